"""Convert the Comic Neue OpenType (CFF) fonts to TrueType outlines for comic_studio/resources/fonts/.

Why: reportlab embeds only TrueType-outline fonts, and the PDF and PNG exports must use the very
same font file so that text wraps identically in both. Comic Neue is OFL-1.1 without reserved font
names, so a converted copy may keep its name (see comic_studio/resources/fonts/OFL.txt).

Usage: python packaging/fonts/otf_to_ttf.py /usr/share/fonts/opentype/comic-neue comic_studio/resources/fonts
(Debian package fonts-comic-neue 2.51 was the source of the bundled files.)
"""

import sys
from pathlib import Path

from fontTools.pens.cu2quPen import Cu2QuPen
from fontTools.pens.ttGlyphPen import TTGlyphPen
from fontTools.ttLib import TTFont, newTable

MAX_ERR = 1.0  # font units; cubic → quadratic approximation error


def convert(src: Path, dst: Path) -> None:
    font = TTFont(src)
    glyph_order = font.getGlyphOrder()
    glyph_set = font.getGlyphSet()
    glyf = newTable("glyf")
    glyf.glyphOrder = glyph_order
    glyf.glyphs = {}
    for name in glyph_order:
        pen = TTGlyphPen(glyph_set)
        glyph_set[name].draw(Cu2QuPen(pen, MAX_ERR, reverse_direction=True))
        glyf[name] = pen.glyph()
    font["glyf"] = glyf
    font["loca"] = newTable("loca")
    del font["CFF "]
    if "VORG" in font:
        del font["VORG"]
    font["maxp"] = newTable("maxp")
    font["maxp"].tableVersion = 0x00010000
    for attr in (
        "maxZones",
        "maxTwilightPoints",
        "maxStorage",
        "maxFunctionDefs",
        "maxInstructionDefs",
        "maxStackElements",
        "maxSizeOfInstructions",
        "maxComponentElements",
    ):
        setattr(font["maxp"], attr, 0)
    font["maxp"].maxZones = 1
    font["head"].glyphDataFormat = 0
    font["post"].formatType = 2.0
    font["post"].extraNames = []
    font["post"].mapping = {}
    font["post"].glyphOrder = glyph_order
    font.sfntVersion = "\x00\x01\x00\x00"
    font.recalcBBoxes = True
    font.save(dst)


if __name__ == "__main__":
    src_dir, dst_dir = Path(sys.argv[1]), Path(sys.argv[2])
    for style in ("Regular", "Bold", "Italic", "BoldItalic"):
        convert(src_dir / f"ComicNeue-{style}.otf", dst_dir / f"ComicNeue-{style}.ttf")
        print("wrote", dst_dir / f"ComicNeue-{style}.ttf")
