#!/usr/bin/env bash
# Install the desktop integration for the current user: the menu entry, the icon in every size, the MIME type
# for *.seqwb (so double-clicking a project opens it in Sequence Workbench) and the AppStream metadata.
#
#   packaging/install_desktop.sh             # into ${XDG_DATA_HOME:-~/.local/share}
#   packaging/install_desktop.sh --uninstall
#   DESTDIR=/tmp/root packaging/install_desktop.sh   # stage into another root (nothing is registered then)
#
# `seqwb` must be on PATH (pip install ., pipx install ., or the bundle's folder); the menu entry runs
# `seqwb gui FILE`.  xdg-desktop-menu / xdg-mime / update-mime-database / gtk-update-icon-cache are used when
# present; without them the files are still copied and the desktop picks them up at its next start.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
RES="$(dirname "$HERE")/resources"
DATA="${DESTDIR:-}${XDG_DATA_HOME:-$HOME/.local/share}"
APP_ID=io.github.seqwb.SequenceWorkbench
MIME=application/x-seqwb-project
have() { command -v "$1" >/dev/null 2>&1 && [ -z "${DESTDIR:-}" ]; }

if [ "${1:-}" = "--uninstall" ]; then
    rm -f "$DATA/applications/seqwb.desktop" "$DATA/mime/packages/seqwb-mime.xml" \
          "$DATA/metainfo/$APP_ID.metainfo.xml"
    find "$DATA/icons/hicolor" -name 'seqwb.png' -o -name 'seqwb.svg' 2>/dev/null | xargs -r rm -f
    find "$DATA/icons/hicolor" -path '*/mimetypes/application-x-seqwb-project.*' 2>/dev/null | xargs -r rm -f
    have update-mime-database && update-mime-database "$DATA/mime" || true
    have update-desktop-database && update-desktop-database -q "$DATA/applications" || true
    echo "removed Sequence Workbench's desktop files from $DATA"
    exit 0
fi

command -v seqwb >/dev/null 2>&1 || echo "note: seqwb is not on PATH; the menu entry will not start until it is"

# icons: the app icon and the same picture for project files (MIME icon name application-x-seqwb-project)
for dir in "$RES"/icons/hicolor/*/apps; do
    size="$(basename "$(dirname "$dir")")"
    for f in "$dir"/seqwb.*; do
        ext="${f##*.}"
        install -D -m 644 "$f" "$DATA/icons/hicolor/$size/apps/seqwb.$ext"
        install -D -m 644 "$f" "$DATA/icons/hicolor/$size/mimetypes/application-x-seqwb-project.$ext"
    done
done
install -D -m 644 "$RES/seqwb.desktop" "$DATA/applications/seqwb.desktop"
install -D -m 644 "$RES/seqwb-mime.xml" "$DATA/mime/packages/seqwb-mime.xml"
install -D -m 644 "$RES/$APP_ID.metainfo.xml" "$DATA/metainfo/$APP_ID.metainfo.xml"

# register (each step only where its tool exists)
have update-mime-database && update-mime-database "$DATA/mime"
have update-desktop-database && update-desktop-database -q "$DATA/applications" || true
have gtk-update-icon-cache && [ -f "$DATA/icons/hicolor/index.theme" ] && \
    gtk-update-icon-cache -q -t "$DATA/icons/hicolor" || true
if have xdg-mime; then
    xdg-mime default seqwb.desktop "$MIME" || echo "note: xdg-mime could not make seqwb the default for $MIME"
fi
echo "installed Sequence Workbench's desktop entry, icons, $MIME (*.seqwb) and AppStream metadata into $DATA"
