"""The assistant's Markdown as the agents' console shows it (`bot.gateway.rich_text`): paragraphs,
line breaks, bold, bulleted and numbered lists, links; never a link other than http(s) or mailto,
and no text ever turned into markup (the console builds these blocks with textContent)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.answers import local_now, reply
from bot.answers.replies import webmail_reply
from bot.gateway import rich_text
from bot.gateway.rich_text import blocks, plain, runs
from bot.knowledge import Knowledge

XSS = "<img src=x onerror=alert(1)> et [x](javascript:alert(1))"


def all_runs(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    lines = []
    for block in found:
        if block["type"] == "paragraph":
            lines += block["lines"]
        else:
            lines += [line for item in block["items"] for line in item]
    return [run for line in lines for run in line]


def links(text: str) -> list[tuple[str, str]]:
    return [(run["text"], run["href"]) for run in all_runs(blocks(text)) if "href" in run]


def test_paragraphs_line_breaks_and_lists_as_the_assistant_writes_them():
    text = (
        "Voici comment faire :\n"
        "1. Allez dans l'espace électeur.\n"
        "2. Saisissez votre adresse.\n"
        "\n"
        "À savoir :\n"
        "- il faut **8 caractères** ;\n"
        "* une majuscule ;\n"
        "• un chiffre.\n"
        "\n"
        "Première ligne\n"
        "deuxième ligne"
    )
    assert blocks(text) == [
        {"type": "paragraph", "lines": [[{"text": "Voici comment faire :"}]]},
        {
            "type": "list",
            "ordered": True,
            "start": 1,
            "items": [
                [[{"text": "Allez dans l'espace électeur."}]],
                [[{"text": "Saisissez votre adresse."}]],
            ],
        },
        {"type": "paragraph", "lines": [[{"text": "À savoir :"}]]},
        {
            "type": "list",
            "ordered": False,
            "start": 1,
            "items": [
                [[{"text": "il faut "}, {"text": "8 caractères", "bold": True}, {"text": " ;"}]],
                [[{"text": "une majuscule ;"}]],
                [[{"text": "un chiffre."}]],
            ],
        },
        {
            "type": "paragraph",
            "lines": [[{"text": "Première ligne"}], [{"text": "deuxième ligne"}]],
        },
    ]


def test_a_numbered_list_keeps_its_first_number_and_an_indented_line_stays_in_its_item():
    [numbered] = blocks("3. Votez.\n   Puis déconnectez-vous.\n4. Fermez la page.")
    assert numbered["ordered"] and numbered["start"] == 3
    assert numbered["items"][0] == [[{"text": "Votez."}], [{"text": "Puis déconnectez-vous."}]]
    # A number followed by a period inside a sentence is not a list.
    assert blocks("Le 6. décembre")[0]["type"] == "paragraph"
    assert blocks("**Lyon** : webmail")[0]["type"] == "paragraph"  # not a "*" bullet


def test_links_bare_addresses_host_names_and_written_links():
    text = (
        "Espace électeur (https://elections2018.education.gouv.fr/portail/identification.htm). "
        "Messagerie **webmail.ac-lyon.fr**, adresse prenom.nom@ac-lyon.fr, "
        "[page de la FSU](http://www.fsu.fr/Acces.html?a=1&b=2) et https://x.fr/a."
    )
    assert links(text) == [
        (
            "https://elections2018.education.gouv.fr/portail/identification.htm",
            "https://elections2018.education.gouv.fr/portail/identification.htm",
        ),
        ("webmail.ac-lyon.fr", "https://webmail.ac-lyon.fr"),
        ("page de la FSU", "http://www.fsu.fr/Acces.html?a=1&b=2"),
        ("https://x.fr/a", "https://x.fr/a"),
    ]  # the e-mail address's domain is not a link, the closing ")" and "." are not in links
    bold_link = runs("**webmail.ac-lyon.fr**")
    assert bold_link == [
        {"text": "webmail.ac-lyon.fr", "href": "https://webmail.ac-lyon.fr", "bold": True}
    ]
    assert links("[écrire](mailto:assistance@ac-lyon.fr)") == [
        ("écrire", "mailto:assistance@ac-lyon.fr")
    ]


@pytest.mark.parametrize(
    "written",
    [
        "[x](javascript:alert(1))",
        "[x](javascript:alert)",
        "[x](JaVaScRiPt:alert)",
        "[x](vbscript:msgbox)",
        "[x](data:text/html;base64,PHNjcmlwdD4=)",
        "[x](//evil.example/x)",
        "[x](/console/api/logout)",
        "[x](https:evil.example)",
        "[x](file:///etc/passwd)",
        "[x](mailto:)",
        "javascript:alert(1)",
    ],
)
def test_no_link_but_to_an_http_or_mailto_address_what_was_written_stays_text(written):
    found = blocks(f"Voir {written} ici")
    assert links(f"Voir {written} ici") == []
    assert "".join(run["text"] for run in all_runs(found)) == f"Voir {written} ici"


def test_html_in_a_message_is_text_never_markup():
    found = blocks(f"**Attention** {XSS}\n- <script>alert(1)</script>")
    texts = [run["text"] for run in all_runs(found)]
    assert texts == [
        "Attention",
        " <img src=x onerror=alert(1)> et [x](javascript:alert(1))",
        "<script>alert(1)</script>",
    ]
    assert not any("href" in run for run in all_runs(found))
    assert rich_text.safe_href("https://a.fr/\x00") is None
    assert rich_text.safe_href("https://a.fr/ x") is None


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab*-•1.) \n[]()<>\"':/@hjtpsfrx")), max_size=80))
def test_any_text_gives_well_formed_blocks_with_only_safe_links(text):
    found = blocks(text)
    for run in all_runs(found):
        assert set(run) <= {"text", "bold", "href"} and run["text"]
        assert run["text"] in text  # a piece of what was written, never something else
        if "href" in run:
            assert run["href"].split(":", 1)[0].lower() in {"http", "https", "mailto"}
            assert rich_text.safe_href(run["href"]) == run["href"]
    assert isinstance(plain(text), str)


def test_plain_text_for_the_reply_box_has_no_markdown_markers():
    text = (
        "**Lyon** : messagerie professionnelle **webmail.ac-lyon.fr**\n"
        "\n"
        "Vérifiez :\n"
        "- votre **adresse** ;\n"
        "- le [site de la FSU](http://www.fsu.fr/Acces.html).\n"
        "1. Connectez-vous (https://a.fr/portail).\n"
        "2. Votez."
    )
    assert plain(text) == (
        "Lyon : messagerie professionnelle webmail.ac-lyon.fr\n"
        "\n"
        "Vérifiez :\n"
        "• votre adresse ;\n"
        "• le site de la FSU (http://www.fsu.fr/Acces.html).\n"
        "1. Connectez-vous (https://a.fr/portail).\n"
        "2. Votez."
    )
    assert plain(XSS) == XSS  # no marker in it: unchanged, and never escaped or interpreted
    assert plain("Bonjour,\r\nà bientôt") == "Bonjour,\nà bientôt"


def test_every_answer_of_the_knowledge_base_renders_without_markdown_markers(knowledge: Knowledge):
    now = local_now(knowledge)
    answers = [
        reply(knowledge, key, [], now, text="x").text for key, _ in knowledge.answer_titles()
    ]
    answers.append(webmail_reply(knowledge, knowledge.academie("Lyon")))
    kinds = set()
    for answer in filter(None, answers):
        found = blocks(answer)
        kinds |= {(b["type"], b.get("ordered")) for b in found}
        for run in all_runs(found):
            assert "**" not in run["text"], (answer, run)
        assert "**" not in plain(answer)
        assert not any(line.lstrip().startswith("- ") for line in plain(answer).splitlines())
    # The knowledge base uses every kind of block the console shows.
    assert kinds == {("paragraph", None), ("list", True), ("list", False)}
    lyon = blocks(answers[-1])[0]["lines"][0]
    assert lyon[0] == {"text": "Lyon", "bold": True}
    assert {
        "text": "webmail.ac-lyon.fr",
        "href": "https://webmail.ac-lyon.fr",
        "bold": True,
    } in lyon
