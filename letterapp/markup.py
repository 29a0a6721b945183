"""Letter Markdown to sanitised HTML: the one place that calls the Markdown library."""

import secrets
import xml.etree.ElementTree as etree
from dataclasses import dataclass
from functools import lru_cache

import markdown
import nh3
from markdown.treeprocessors import Treeprocessor
from markupsafe import Markup

NOTE_STYLES = ("endnotes", "footnotes")

_TAGS = {
    "p",
    "br",
    "hr",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "em",
    "strong",
    "i",
    "b",
    "u",
    "s",
    "sup",
    "sub",
    "a",
    "ul",
    "ol",
    "li",
    "blockquote",
    "q",
    "cite",
    "abbr",
    "code",
    "pre",
    "span",
    "div",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "small",
}
_ATTRIBUTES = {
    "a": {"href", "title", "class"},
    "sup": {"id"},
    "li": {"id"},
    "span": {"class"},
    "div": {"class"},
    "abbr": {"title"},
    "ol": {"start"},
}


@dataclass(frozen=True)
class Body:
    html: Markup
    notes: Markup  # the numbered notes as a list; empty in the footnotes style


def sanitise(html: str) -> Markup:
    """Keep only the tags, attributes and link schemes a letter needs."""
    return Markup(
        nh3.clean(
            html,
            tags=_TAGS,
            clean_content_tags={"script", "style"},
            attributes=_ATTRIBUTES,
            url_schemes={"http", "https", "mailto"},
        )
    )


@lru_cache(maxsize=32)
def render_body(text: str, notes: str = "endnotes") -> Body:
    """Render a letter body; notes are split off (endnotes) or moved to their calls (footnotes)."""
    if notes not in NOTE_STYLES:
        raise ValueError(f"notes must be one of {NOTE_STYLES}")
    marker = f"<p>{secrets.token_hex(16)}</p>"
    md = markdown.Markdown(
        extensions=["footnotes"],
        extension_configs={"footnotes": {"USE_DEFINITION_ORDER": False}},
        output_format="html",
    )
    md.treeprocessors.register(_NotesOut(md, notes, marker), "letter_notes", 5)
    html = md.convert(text)
    body, _, endnotes = html.partition(marker)
    return Body(html=sanitise(body), notes=sanitise(endnotes))


class _NotesOut(Treeprocessor):
    """Runs after the footnotes extension has appended its `div.footnote`."""

    def __init__(self, md, style: str, marker: str):
        super().__init__(md)
        self.style = style
        self.marker = marker

    def run(self, root: etree.Element) -> None:
        notes = next((el for el in root if el.tag == "div" and el.get("class") == "footnote"), None)
        if notes is None:
            return
        if self.style == "endnotes":
            # A marker the author cannot guess, to split the output after conversion.
            index = list(root).index(notes)
            root.insert(index, etree.fromstring(self.marker))
            notes.remove(notes.find("hr"))
        else:
            root.remove(notes)
            _move_notes_to_calls(root, notes)


def _move_notes_to_calls(root: etree.Element, notes: etree.Element) -> None:
    """Replace each note's first call by a `span.fn` holding the note, for `float: footnote`."""
    items = {li.get("id", "").removeprefix("fn:"): li for li in notes.iter("li")}
    parents = {child: parent for parent in root.iter() for child in parent}
    placed = set()
    for sup in list(root.iter("sup")):
        link = sup.find("a")
        if link is None or link.get("class") != "footnote-ref":
            continue
        label = link.get("href", "").removeprefix("#fn:")
        sup.remove(link)
        if label in placed or label not in items:
            sup.text = link.text  # a repeated call shows the number the note already has
            continue
        placed.add(label)
        note = etree.Element("span", {"class": "fn"})
        for paragraph in items[label].findall("p"):
            for backref in paragraph.findall("a[@class='footnote-backref']"):
                paragraph.remove(backref)
            paragraph.tag = "span"
            note.append(paragraph)
        note.tail = sup.tail
        parent = parents[sup]
        parent.insert(list(parent).index(sup), note)
        parent.remove(sup)


def render_message(text: str) -> Markup:
    """Render an email's Markdown (a cover message) to sanitised HTML.

    Single line breaks are kept (`nl2br`): a signature block written on three
    lines must not run into one line in the HTML part while the text part keeps them.
    """
    return sanitise(markdown.markdown(text, extensions=["nl2br"], output_format="html"))
