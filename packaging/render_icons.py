"""Render resources/seqwb.svg to PNGs in the freedesktop icon sizes, with Qt's SVG renderer (works offscreen).

    python packaging/render_icons.py          # writes resources/icons/hicolor/NxN/apps/seqwb.png
                                              # and the copies the app loads at run time (workbench/gui/icons/)
    python packaging/render_icons.py --check  # exit 1 when a committed render is out of date with the SVG

``--check`` compares pixels, not bytes: Qt builds round antialiased edges differently (one level in a handful of
pixels between PySide6 6.11 and 6.12), which is not a stale icon.

The window icon is package data of ``workbench.gui`` (so it is inside the wheel and the bundle); the SVG in
resources/ is the one source, copied there byte for byte.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "resources" / "seqwb.svg"
HICOLOR = ROOT / "resources" / "icons" / "hicolor"
RUNTIME = ROOT / "workbench" / "gui" / "icons"
SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)
RUNTIME_SIZES = (16, 32, 48, 256)


def render(svg: Path, size: int) -> bytes:
    """PNG bytes of ``svg`` drawn into a transparent ``size`` x ``size`` image."""
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"render_icons: {svg} is not a valid SVG")
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(0)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    renderer.render(painter)
    painter.end()
    data = QByteArray()
    buf = QBuffer(data)
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buf, "PNG")
    buf.close()
    return bytes(data.data())


#: the largest difference of one channel of one pixel that ``--check`` accepts (rounding between Qt builds)
PIXEL_TOLERANCE = 2


def same_picture(a: bytes, b: bytes) -> bool:
    """True if two PNGs decode to pictures of one size whose channels differ by at most PIXEL_TOLERANCE."""
    from PySide6.QtGui import QImage
    images = [QImage.fromData(x).convertToFormat(QImage.Format.Format_RGBA8888) for x in (a, b)]
    if any(im.isNull() for im in images) or images[0].size() != images[1].size():
        return False
    pa, pb = (bytes(im.constBits())[:im.sizeInBytes()] for im in images)
    return max((abs(x - y) for x, y in zip(pa, pb)), default=0) <= PIXEL_TOLERANCE


def targets() -> dict[Path, bytes]:
    """Every file this script writes, with its contents."""
    out: dict[Path, bytes] = {}
    svg_bytes = SOURCE.read_bytes()
    for size in SIZES:
        png = render(SOURCE, size)
        out[HICOLOR / f"{size}x{size}" / "apps" / "seqwb.png"] = png
        if size in RUNTIME_SIZES:
            out[RUNTIME / f"seqwb-{size}.png"] = png
    out[HICOLOR / "scalable" / "apps" / "seqwb.svg"] = svg_bytes
    out[RUNTIME / "seqwb.svg"] = svg_bytes
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only check that the committed files are up to date")
    args = ap.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtGui import QGuiApplication
    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])  # noqa: F841 - QImage/QPainter need it
    sys.path.insert(0, str(ROOT))
    from workbench.atomic import atomic_write
    stale = []
    for path, data in targets().items():
        if path.exists():
            have = path.read_bytes()
            if have == data or (args.check and path.suffix == ".png" and same_picture(have, data)):
                continue
        if args.check:
            stale.append(path)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path) as fh:
            fh.write(data)
        print(f"wrote {path.relative_to(ROOT)}")
    if stale:
        print("out of date (run packaging/render_icons.py): " + ", ".join(str(p.relative_to(ROOT)) for p in stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
