"""The console's language: a page is in Chinese (the default: the staff are in
Chongqing) with English beside its labels, or in English on request. Every word comes
from the one catalogue of labels, `reissue.schemas.labels`."""

from __future__ import annotations

from datetime import datetime

from markupsafe import Markup, escape

from reissue.schemas.clock import BEIJING
from reissue.schemas.labels import LANGUAGES, UI, Label, span

__all__ = ["LANGUAGES", "Translator"]


class Translator:
    """Texts, labels and times in one language."""

    def __init__(self, lang: str) -> None:
        self.lang = lang if lang in LANGUAGES else LANGUAGES[0]

    def __call__(self, key: str, **values: object) -> str:
        """A text of the console's own in the page's language."""
        return self.say(UI[key].format(**values) if values else UI[key])

    def say(self, label: Label) -> str:
        """A label in the page's language."""
        return label.text(self.lang)

    def both(self, what: str | Label, **values: object) -> Markup:
        """A label (or a text of the console's, by key) in the page's language, with the
        English beside it on a Chinese page."""
        label = UI[what] if isinstance(what, str) else what
        label = label.format(**values) if values else label
        if self.lang == "en" or label.zh == label.en:
            return escape(label.text(self.lang))
        return Markup('{} <span class="en" lang="en">{}</span>').format(label.zh, label.en)

    def time(self, at: datetime | None) -> str:
        """Beijing time; the page names the zone once (`times_note`)."""
        return "—" if at is None else at.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")

    def span(self, seconds: float) -> str:
        return self.say(span(seconds))
