"""Build static/fonts/noto-sans-ethiopic-*.woff2, the Ethiopic font of the Tigrinya pages.

Phones without an Ethiopic font showed Tigrinya as empty boxes. The font is Noto Sans
Ethiopic (SIL Open Font License 1.1, no reserved font name: static/fonts/OFL.txt), taken
from the npm package @fontsource/noto-sans-ethiopic 5.3.0 (licence field "OFL-1.1"):

    npm pack @fontsource/noto-sans-ethiopic@5.3.0 && tar xzf fontsource-noto-sans-ethiopic-5.3.0.tgz

The whole weight-400 file is 75 KB, more than a page may weigh (50 KB). Kept: the Ethiopic
block U+1200-137F (every syllable, Ethiopic punctuation and numerals, 358 characters),
the mark positioning of its combining marks; dropped: hinting, kerning, other scripts
(Latin stays in the phone's own font). Result: about 14.5 KB. A second, tiny file holds only
the letters of "ትግርኛ", the language's name in the language switch of every page.

Run once, by hand, in a scratch virtualenv (fonttools is MIT, brotli MIT; neither is a
dependency of the application):

    python -m venv /tmp/fonts && /tmp/fonts/bin/pip install fonttools brotli
    /tmp/fonts/bin/python tools/subset_ethiopic_font.py package/files
"""

from __future__ import annotations

import sys
from pathlib import Path

from fontTools import subset  # type: ignore[import-not-found]

OUT = Path(__file__).resolve().parents[1] / "static" / "fonts"
SOURCE = "noto-sans-ethiopic-ethiopic-400-normal.woff2"
SUBSETS = {
    "noto-sans-ethiopic-400.woff2": "U+1200-137F",
    "noto-sans-ethiopic-name.woff2": ",".join(f"U+{ord(c):04X}" for c in "ትግርኛ"),
}


def main(package_files: Path) -> None:
    for name, unicodes in SUBSETS.items():
        subset.main(
            [
                str(package_files / SOURCE),
                f"--unicodes={unicodes}",
                "--flavor=woff2",
                f"--output-file={OUT / name}",
                "--no-hinting",
                "--desubroutinize",
                "--layout-features=mark,mkmk",
                "--name-IDs=*",  # the copyright and licence notices stay in the font
            ]
        )
        print(name, (OUT / name).stat().st_size, "bytes")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
