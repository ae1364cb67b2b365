import pytest
from fixtures import DUTCH, ENGLISH_TEST, ENGLISH_TRAIN, SPANISH

from conll_ner.data.conll import ConllFormatError, read_conll_file
from conll_ner.data.tags import iob_to_spans


def test_english_iob1_documents_and_trailing_blank(write_file):
    conll = read_conll_file(write_file("eng.train", ENGLISH_TRAIN))
    assert conll.columns == 4 and conll.documents == 2 and conll.encoding == "utf-8"
    assert [s.words[0] for s in conll.sentences] == ["EU", "Peter", "In"]
    assert [s.doc_start for s in conll.sentences] == [True, False, True]
    # IOB1: "Hapoel Haifa" and "Hapoel Tel" are two ORG entities split by B-ORG.
    assert iob_to_spans(conll.sentences[2].tags).spans == [(1, 2, "LOC"), (2, 4, "ORG"), (4, 6, "ORG")]


def test_english_test_docstart_variant(write_file):
    conll = read_conll_file(write_file("eng.testb", ENGLISH_TEST))
    assert conll.documents == 2 and len(conll.sentences) == 3


def test_spanish_latin1_no_final_blank_line(write_file):
    conll = read_conll_file(write_file("esp.train", SPANISH, encoding="latin-1"))
    assert conll.encoding == "latin-1" and conll.columns == 2 and conll.documents == 0
    assert conll.sentences[-1].words[-3:] == ["San", "Sebastián", "."]
    assert iob_to_spans(conll.sentences[-1].tags).spans == [(1, 3, "PER"), (5, 7, "LOC")]


def test_dutch_docstart_without_blank_line(write_file):
    conll = read_conll_file(write_file("ned.train", DUTCH, encoding="latin-1"))
    assert conll.columns == 3 and conll.documents == 2
    assert [s.words for s in conll.sentences][0] == ["De", "tekst", "van", "Verberckmoes", "."]
    assert [s.doc_start for s in conll.sentences] == [True, False, True]
    assert conll.sentences[1].words[3] == "België"


def test_utf8_is_preferred_over_latin1(write_file):
    conll = read_conll_file(write_file("x.conll", "Bélgica B-LOC\n", encoding="utf-8"))
    assert conll.encoding == "utf-8" and conll.sentences[0].words == ["Bélgica"]


@pytest.mark.parametrize(
    "content,line,fragment",
    [
        ("EU I-ORG\nrejects VBZ O\n", 2, "expected 2 columns"),
        ("EU NNP I-NP I-ORG\n\nrejects O\n", 3, "expected 4 columns"),
        ("EU X-ORG\n", 1, "unknown NER tag 'X-ORG'"),
        ("EU B-\n", 1, "unknown NER tag 'B-'"),
        ("EU E-ORG\n", 1, "unknown NER tag"),
        ("word\n", 1, "at least 2 columns"),
    ],
)
def test_bad_rows_name_file_and_line(write_file, content, line, fragment):
    path = write_file("bad.conll", content)
    with pytest.raises(ConllFormatError) as err:
        read_conll_file(path)
    assert err.value.line == line
    assert str(err.value).startswith(f"{path}:{line}: ")
    assert fragment in str(err.value)


@pytest.mark.parametrize("content", ["", "\n\n  \n", "-DOCSTART- -X- O O\n\n"])
def test_empty_files_are_rejected(write_file, content):
    with pytest.raises(ConllFormatError, match="empty|no token rows"):
        read_conll_file(write_file("empty.conll", content))


def test_undecodable_bytes_are_rejected_with_line(write_file):
    # 0x93 is a Windows-1252 quote: not UTF-8, and a C1 control in latin-1.
    path = write_file("cp1252.conll", b"EU B-ORG\n\x93quoted\x94 O\n")
    with pytest.raises(ConllFormatError, match=r"cp1252.conll:2: undecodable byte 0x93"):
        read_conll_file(path)


@pytest.mark.parametrize("text,documents", [("EU NNP I-NP I-ORG\n", 0), (ENGLISH_TRAIN, 2)])
def test_utf8_byte_order_mark_is_not_read_as_text(write_file, text, documents):
    conll = read_conll_file(write_file("eng.train", b"\xef\xbb\xbf" + text.encode("utf-8")))
    assert conll.encoding == "utf-8" and conll.documents == documents
    assert conll.sentences[0].words[0] == "EU"
