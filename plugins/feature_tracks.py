"""Built-in feature tracks for unit search, contributed through the same hook as any plugin's.

The track functions live in :mod:`workbench_plugins.text_features` (numpy only); this module only names them, so
discovery imports neither numpy nor torch.
"""

from __future__ import annotations

from workbench.api import FeatureTrackSpec, NoParams, hookimpl

VERSION = "1.0"
_IMPL = "workbench_plugins.text_features"


def _track(id: str, title: str, fn: str, description: str) -> FeatureTrackSpec:
    return FeatureTrackSpec(id=id, title=title, version=VERSION, params=NoParams, factory=f"{_IMPL}:{fn}",
                            description=description)


@hookimpl
def seqwb_feature_tracks() -> list[FeatureTrackSpec]:
    return [
        _track("quotes", "Inside quotes", "track_quotes",
               "1 inside a string literal ('...', \"...\", and their triple forms), from the opening quote up to "
               "(not including) the closing one."),
        _track("comment", "Inside a comment", "track_comment",
               "1 from a # (outside strings) to the end of its line, newline excluded."),
        _track("brackets", "Bracket depth", "track_brackets",
               "Nesting depth of (), [] and {} outside strings and comments, after reading each character."),
        _track("line_position", "Position in line", "track_line_position",
               "Column of each character in its line (0 for a line's first character)."),
        _track("indent", "Indentation", "track_indent",
               "Width of the leading spaces and tabs of each character's line (a tab to the next multiple of 8)."),
        _track("word_start", "Start of word", "track_word_start",
               "1 on the first character of every word (a run of letters, digits and underscores)."),
    ]
