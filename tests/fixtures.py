"""A few lines of each release that reproduce its quirks."""

# English: 4 columns, IOB1, -DOCSTART- -X- O O (train/dev), trailing blank line.
ENGLISH_TRAIN = """-DOCSTART- -X- O O

EU NNP I-NP I-ORG
rejects VBZ I-VP O
German JJ I-NP I-MISC
call NN I-NP O
. . O O

Peter NNP I-NP I-PER
Blackburn NNP I-NP I-PER

-DOCSTART- -X- O O

In IN I-PP O
Rome NNP I-NP I-LOC
Hapoel NNP I-NP I-ORG
Haifa NNP I-NP I-ORG
Hapoel NNP I-NP B-ORG
Tel NNP I-NP I-ORG
. . O O

"""

# English test: the document marker is written -DOCSTART- -X- -X- O.
ENGLISH_TEST = ENGLISH_TRAIN.replace("-DOCSTART- -X- O O", "-DOCSTART- -X- -X- O")

# Spanish: 2 columns, IOB2 with an entity that wrongly starts with I-, no
# -DOCSTART-, no final blank line; written as latin-1.
SPANISH = """Melbourne B-LOC
( O
Australia B-LOC
) O
, O
25 O
may O
( O
EFE B-ORG
) O
. O

El O
Abogado B-PER
General I-PER
del O
Estado O
San I-LOC
Sebastián I-LOC
. O"""

# Dutch: 3 columns, -DOCSTART- -DOCSTART- O followed directly by a sentence.
DUTCH = """-DOCSTART- -DOCSTART- O
De Art O
tekst N O
van Prep O
Verberckmoes N B-PER
. Punc O

Hij Pron O
woont V O
in Prep O
België N B-LOC
. Punc O
-DOCSTART- -DOCSTART- O
Tweede Num O
document N O
. Punc O
"""
