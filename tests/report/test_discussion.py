"""The discussion and the key findings follow the numbers, with and without labels."""

import json
import re

import pytest

from cxrvae.report.discussion import discussion, word_count
from cxrvae.report.findings import key_findings
from cxrvae.report.prose import probe_ends
from cxrvae.results import ProbePath, StudyMetrics, from_dict
from cxrvae.thresholds import MIN_EFFECT


def _answers(m):
    return {a.key: a for a in discussion(from_dict(StudyMetrics, m))}


def _text(m) -> str:
    return " ".join(f"{a.answer} {' '.join(a.why)}" for a in _answers(m).values())


def test_every_question_opens_with_a_one_sentence_answer(constructed):
    answers = _answers(constructed())
    assert list(answers) == ["data", "reconstruction", "latent-use", "clusters", "maps", "axes",
                             "label"]  # fmt: skip
    for a in answers.values():
        assert a.question.endswith("?") and a.answer.endswith(".")
        assert a.answer.count(". ") == 0, a.answer  # one sentence
        assert a.table and all(len(r) == len(a.table.head) for r in a.table.rows)
    head = answers["reconstruction"].table.head
    assert head == ["", "latent 4", "latent 16", "latent 32"]  # models as columns


def test_the_discussion_stays_under_900_words_for_three_models(constructed):
    assert word_count(discussion(from_dict(StudyMetrics, constructed()))) < 900


@pytest.mark.parametrize(
    "above, verdict, where",
    [
        ((300.0, 210.0, 200.0), "Larger codes reconstruct better", "between latent 4 and 16"),
        ((300.0, 299.0, 298.0), "does not reconstruct better", None),
    ],
)
def test_reconstruction_answer_follows_the_error(above, verdict, where, constructed):
    a = _answers(constructed(above=above))["reconstruction"]
    assert verdict in a.answer and (where is None or where in a.answer)


@pytest.mark.parametrize(
    "removed, verdict",
    [
        ((0.5, 0.6, 0.7), "remove 50% to 70% of the error"),
        ((-0.1, -0.2, -0.3), "PCA with as many components reconstructs better than every model"),
        ((-0.1, 0.2, 0.3), "Only latent 16 and 32 beat PCA with as many components; latent 4 pays"),
        (
            (-0.1, -0.2, 0.3),
            "Only latent 32 beats PCA with as many components; latent 4 and 16 pay",
        ),
    ],
)
def test_reconstruction_why_follows_the_linear_baseline(removed, verdict, constructed):
    m = constructed()
    for d, r in zip((4, 16, 32), removed):  # the constructed models
        m["models"][str(d)]["analysis"]["linear_baseline"]["error_removed"] = r
    assert verdict in _text(m)


def test_latent_use_rests_on_the_kl_and_says_why_active_units_differ(constructed):
    text = _answers(constructed(used=3, active=None))["latent-use"]
    assert "3 of 4, 3 of 16 and 3 of 32" in text.answer
    assert any("The count rests on the KL per dimension" in w for w in text.why)
    same = _answers(constructed())["latent-use"]
    assert not any("rests on" in w for w in same.why)  # one story when both agree
    collapsed = _answers(constructed(used=1, active=1))["latent-use"]
    assert "latent 4, 16 and 32 have collapsed to the prior" in collapsed.answer


@pytest.mark.parametrize(
    "ari, verdict", [(0.9, "group the images alike"), (0.1, "group the images differently"),
                     (0.5, "group the images in part alike")],
)  # fmt: skip
def test_cluster_answer_follows_the_ari(ari, verdict, constructed):
    answer = _answers(constructed(ari=ari))["clusters"].answer
    assert verdict in answer and "cuts through a continuum" in answer  # silhouette 0.2


def test_axes_name_the_leading_features_and_what_does_not_change(constructed):
    a = _answers(constructed())["axes"]
    assert (
        "Most paths change exposure" in a.answer and "the largest change is in exposure" in a.answer
    )
    cell = a.table.rows[0][1]
    assert "exposure -2.00 SD; contrast +1.00 SD" in cell  # the two largest, no "also" list
    assert "sharpness" not in cell
    assert any("No path moves" in w and "sharpness" in w for w in a.why)
    small = _answers(constructed(effects={"exposure": MIN_EFFECT / 2}))["axes"]
    assert f"nothing by {MIN_EFFECT} SD" in small.table.rows[0][1]


def test_the_probe_along_a_path_is_quoted_as_the_issue_asks(constructed):
    a = _answers(constructed())["axes"]
    assert (
        "t-SNE 1 of latent 4 runs from images the probe calls pneumonia (0.90) to normal (0.10)"
        in a.answer
    )
    probe = ProbePath(label="pneumonia", probability=[0.07, 0.97])
    assert probe_ends(probe, ["normal", "pneumonia"]) == "normal (0.07) to pneumonia (0.97)"
    assert probe_ends(probe, ["a", "b", "pneumonia"]) == "p(pneumonia) 0.07 to 0.97"


def test_without_labels_nothing_is_said_about_labels(constructed):
    m = constructed(labels=False)
    answers = _answers(m)
    assert "label" not in answers
    text = _text(m) + " ".join(c for a in answers.values() for r in a.table.rows for c in r)
    findings = " ".join(f.text for f in key_findings(from_dict(StudyMetrics, m)))
    for word in ("pneumonia", "normal", "probe", "AUC", "5-NN"):
        assert word not in text and word not in findings, word


def test_five_to_eight_findings_each_with_its_number(constructed):
    for labels in (True, False):
        found = key_findings(from_dict(StudyMetrics, constructed(labels=labels)))
        assert 5 <= len(found) <= 8
        assert all(re.search(r"\d", f.text) and f.anchor for f in found)


def _leaves(tree, path=()):
    """Every number of a JSON tree, with its path (dictionary keys and list indices)."""
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            yield from _leaves(v, (*path, i))
    elif isinstance(tree, int | float) and not isinstance(tree, bool):
        yield path, tree


def _pieces(m) -> list[str]:
    """The findings and the discussion's answers, reasons and table cells, one string each."""
    typed = from_dict(StudyMetrics, m)
    out = [f.text for f in key_findings(typed)]
    for a in discussion(typed):
        out += [a.answer, *a.why, *(c for r in a.table.rows for c in r)] if a.table else [a.answer]
    return [t.replace(",", "") for t in out]


NUMBER = r"(?<![\w.])-?\d+(?:\.\d+)?%?"


def _shows(value: float, token: str) -> bool:
    """Whether ``value`` is what ``token`` shows: at its number of decimals, or as a share in
    whole percent."""
    shown = abs(float(token.rstrip("%")))
    if token.endswith("%"):
        return abs(100 * abs(value) - shown) <= 0.5
    step = 10 ** -len(token.split(".")[1]) if "." in token else 1
    return abs(abs(value) - shown) <= step / 2 + 1e-9


def _moved(metrics: dict, paths) -> dict:
    """``metrics`` with the values at ``paths`` moved far enough to show other numbers."""
    import copy

    out = copy.deepcopy(metrics)
    for path in paths:
        node = out
        for key in path[:-1]:
            node = node[key]
        v = node[path[-1]]
        node[path[-1]] = v + 7 if isinstance(v, int) else v * 1.37 + 0.37
    return out


def test_every_number_of_the_findings_and_discussion_comes_from_metrics_json(study):
    """Each number of the prose is a value of metrics.json (or a threshold) shown at its
    precision, and it moves where it stands when that value moves: changing every value it
    could be changes that number. A number written into the prose, or computed wrongly from
    other values, fails, even where it happens to equal some other value of metrics.json."""
    import cxrvae.thresholds as thresholds

    _, out = study
    metrics = json.loads((out / "metrics.json").read_text())
    del metrics["timings"]  # seconds of this machine, not said in the prose
    leaves = list(_leaves(metrics))
    constants = [v for v in vars(thresholds).values() if isinstance(v, float | int)]
    constants += [2, 5, 16, 90, 0.9, 95, 0.001, 0.999]  # "two", "5-NN", "for 90% of images"
    constants += [int(k) for k in metrics["models"]]  # the models' names: "latent 4"
    pieces = _pieces(metrics)
    renders, checked = {}, 0
    for i, piece in enumerate(pieces):
        for k, token in enumerate(re.findall(NUMBER, piece)):
            paths = frozenset(path for path, v in leaves if _shows(v, token))
            constant = any(_shows(c, token) for c in constants)
            assert paths or constant, f"{token} ({piece!r}) is not in metrics.json"
            if not paths:
                continue
            if paths not in renders:
                renders[paths] = _pieces(_moved(metrics, paths))
            after = renders[paths]
            template = re.sub(NUMBER, "#", piece)
            if len(after) != len(pieces) or re.sub(NUMBER, "#", after[i]) != template:
                continue  # the sentence itself changed: its words follow the moved values
            checked += 1
            moved = re.findall(NUMBER, after[i])[k] != token
            assert moved or constant, (
                f"{token} in {piece!r} stays when every value of metrics.json it shows moves"
            )
    assert checked > 40  # most numbers could be followed


def _all_sentences(m) -> list[str]:
    typed = from_dict(StudyMetrics, m)
    out = [f.text for f in key_findings(typed)]
    for a in discussion(typed):
        out += [a.answer, *a.why]
        if a.table:
            out += [" ".join(a.table.head), *(" ".join(r) for r in a.table.rows)]
    return out


def test_labels_without_names_read_labelled_and_nothing_is_said_of_patients(constructed):
    m = constructed(names=["0", "1"])
    m["data"]["exploration"]["duplicates"]["identical_regrouped"] = 0  # no patients known
    text = " ".join(_all_sentences(m))
    assert "Images labelled 1 have lower sharpness of edges (d = -1.40) than images labelled 0" in (
        text
    )
    assert "Compared with images labelled 0, images labelled 1 have mostly" in text
    assert "d (label 1 - label 0)" in text
    assert "the probe calls label 1 (0.90) to label 0 (0.10)" in text
    assert "share of label 1 per cluster" in text and "(label 0 / label 1)" in text
    assert not re.search(r"\b[01] (images|ones)\b", text)
    assert "patient" not in text.lower()


@pytest.mark.parametrize("moving", ["tsne1", "z0", "pca2"])
def test_sentences_stay_grammatical_for_every_axis(constructed, moving):
    m = constructed(moving=moving)
    m["data"]["exploration"]["duplicates"]["identical_images"] = 0  # room for the path finding
    typed = from_dict(StudyMetrics, m)
    findings = [f.text for f in key_findings(typed)]
    assert all(f[0].isupper() and f.endswith(".") for f in findings), findings
    phrase = {"tsne1": "t-SNE 1", "z0": "the most used dimension", "pca2": "PCA 2"}[moving]
    assert any(f.startswith(phrase[0].upper() + phrase[1:] + " of latent") for f in findings)
    axes = _answers(m)["axes"]
    assert f", and {phrase} of latent 4 runs from images the probe calls" in axes.answer
    assert axes.table.rows[-1][0] == "most used dimension"  # the table's row label


def test_legends_and_tables_use_one_word_table():
    from cxrvae.data import features
    from cxrvae.report import prose

    assert prose.words is features.words and prose.short is features.short
    assert features.short("lung_opacity") == "lung-field brightness"
    assert features.words("dark_border") == features.WORDS["dark_border"]
