"""ComicInfo.xml: the metadata file comic readers (Komga, Kavita, ComicRack heirs) read from a CBZ.

Written against the ComicInfo v2.0 schema of the anansi-project/comicinfo repository
(schema/v2.0/ComicInfo.xsd). The schema is an ``xs:sequence``, so element *order* matters:
:data:`FIELD_ORDER` follows it, and empty optional fields are left out rather than written blank.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from comic_studio.core.model import Project, ReadingDirection

FIELD_ORDER = (
    "Title",
    "Series",
    "Number",
    "Summary",
    "Writer",
    "PageCount",
    "LanguageISO",
    "Manga",
    "Characters",
    "Pages",
)
"""The subset of the schema's sequence this writer fills, in the schema's order."""

# Characters XML 1.0 cannot carry at all (C0 controls other than tab/newline/CR, lone surrogates,
# U+FFFE/U+FFFF); a pasted story can contain them, and one would make the whole file unreadable.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


@dataclass(frozen=True)
class PageImageInfo:
    """What the Pages list records about one page image of the archive."""

    width: int
    height: int
    size_bytes: int


def comicinfo_xml(project: Project, pages: list[PageImageInfo]) -> bytes:
    """The ComicInfo.xml document (UTF-8 bytes) for ``project`` with one ``<Page>`` per image.

    The first page is marked ``FrontCover``, the rest ``Story``. ``Manga`` is
    ``YesAndRightToLeft`` for right-to-left projects (readers then page right to left), else ``No``.
    """
    values: dict[str, str] = {
        "Title": project.title,
        "Series": project.series,
        "Number": project.number,
        "Summary": project.summary,
        "Writer": project.author,
        "PageCount": str(len(pages)),
        "LanguageISO": project.language,
        "Manga": "YesAndRightToLeft" if project.reading_direction == ReadingDirection.RTL else "No",
        "Characters": ", ".join(c.name.replace(",", " ") for c in project.characters),
    }
    root = ET.Element(
        "ComicInfo",
        {
            "xmlns:xsi": "http://www.w3.org/2001/XMLSchema-instance",
            "xmlns:xsd": "http://www.w3.org/2001/XMLSchema",
        },
    )
    for name in FIELD_ORDER:
        if name == "Pages":
            if pages:
                root.append(_pages_element(pages))
            continue
        text = _XML_INVALID.sub("", values[name]).strip()
        if text:
            ET.SubElement(root, name).text = text
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def _pages_element(pages: list[PageImageInfo]) -> ET.Element:
    element = ET.Element("Pages")
    for index, info in enumerate(pages):
        ET.SubElement(
            element,
            "Page",
            {
                "Image": str(index),
                "Type": "FrontCover" if index == 0 else "Story",
                "ImageSize": str(info.size_bytes),
                "ImageWidth": str(info.width),
                "ImageHeight": str(info.height),
            },
        )
    return element
