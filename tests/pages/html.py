"""Reading rendered pages in tests: a small tree of the HTML, its text as a person reads
it, form values and the errors beside them."""

import dataclasses
from html.parser import HTMLParser

_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "wbr"}
# Elements whose text stands apart from their neighbours' (a space between cells).
_BLOCKS = {"br", "dd", "div", "dt", "h1", "h2", "li", "option", "p", "td", "th", "tr", "ul"}


@dataclasses.dataclass
class Element:
    name: str
    attributes: dict[str, str | None]
    children: list = dataclasses.field(default_factory=list)  # Elements and strings


class _TreeBuilder(HTMLParser):
    """A page as a tree of Elements, its text kept as written (Django's parse_html
    strips the spaces between words and links)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {})
        self.open = [self.root]

    def handle_starttag(self, tag, attrs):
        element = Element(tag, dict(attrs))
        self.open[-1].children.append(element)
        if tag not in _VOID:
            self.open.append(element)

    def handle_startendtag(self, tag, attrs):
        self.open[-1].children.append(Element(tag, dict(attrs)))

    def handle_endtag(self, tag):
        for depth in range(len(self.open) - 1, 0, -1):
            if self.open[depth].name == tag:
                del self.open[depth:]
                return

    def handle_data(self, data):
        self.open[-1].children.append(data)


def dom(response) -> Element:
    builder = _TreeBuilder()
    builder.feed(response.content.decode())
    builder.close()
    return builder.root


def walk(node: Element, ancestors: tuple = ()):
    """Every element under ``node`` with its ancestors, outermost first."""
    yield node, ancestors
    for child in node.children:
        if isinstance(child, Element):
            yield from walk(child, (*ancestors, node))


def children(node: Element) -> list[Element]:
    return [child for child in node.children if isinstance(child, Element)]


def attribute(node: Element, name: str) -> str | None:
    return node.attributes.get(name)


def classes(node: Element) -> list[str]:
    return (attribute(node, "class") or "").split()


def raw_text(node: Element) -> str:
    parts = []
    for child in node.children:
        if isinstance(child, str):
            parts.append(child)
        elif child.name in _BLOCKS:
            parts.append(f" {raw_text(child)} ")
        else:
            parts.append(raw_text(child))
    return "".join(parts)


def text(node: Element) -> str:
    """The text a reader sees, whitespace collapsed."""
    return " ".join(raw_text(node).split())


def control(response, name: str) -> tuple[Element, tuple]:
    """The input, textarea or select named ``name``, and its ancestors."""
    for node, ancestors in walk(dom(response)):
        if node.name in {"input", "textarea", "select"} and attribute(node, "name") == name:
            return node, ancestors
    raise AssertionError(f"no field {name} on the page")


def value_of(response, name: str) -> str:
    node, _ = control(response, name)
    if node.name == "textarea":
        return raw_text(node).removeprefix("\n")  # HTML drops a textarea's first newline
    return attribute(node, "value") or ""


def errors_beside(response, name: str) -> list[str]:
    """The errors shown in the box that holds the field (its div.field or table cell)."""
    _, ancestors = control(response, name)
    box = next(
        ancestor
        for ancestor in reversed(ancestors)
        if ancestor.name == "td" or "field" in classes(ancestor)
    )
    return [
        text(item)
        for node, _ in walk(box)
        if node.name == "ul" and "errorlist" in classes(node)
        for item in children(node)
    ]


def form_errors(response) -> list[str]:
    """The errors shown above the form (not beside a field)."""
    return [
        text(node)
        for node, _ in walk(dom(response))
        if node.name == "div" and {"notice", "error"} <= set(classes(node))
    ]


def shown_messages(response) -> list[str]:
    return [
        text(item)
        for node, _ in walk(dom(response))
        if node.name == "ul" and "messages" in classes(node)
        for item in children(node)
    ]


def message_levels(response) -> list[str]:
    """The level of each message shown (success, warning, ...)."""
    return [
        " ".join(classes(item))
        for node, _ in walk(dom(response))
        if node.name == "ul" and "messages" in classes(node)
        for item in children(node)
    ]


def links_in_messages(response) -> list[str]:
    return [
        attribute(node, "href")
        for messages, _ in walk(dom(response))
        if messages.name == "ul" and "messages" in classes(messages)
        for node, _ in walk(messages)
        if node.name == "a"
    ]


def row_of(response, cell_text: str) -> str:
    """The text of the first table row that has a cell reading ``cell_text``."""
    for node, _ in walk(dom(response)):
        if node.name == "tr":
            cells = children(node)
            if any(cell.name in {"td", "th"} and text(cell) == cell_text for cell in cells):
                return text(node)
    raise AssertionError(f"no row with a cell {cell_text!r}")
