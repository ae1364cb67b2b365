"""Code that trained pipelines run when they load and predict, so it travels
inside packaged pipelines (conll_ner/packaging/pipeline_code.py copies every
module here into the package): its modules import each other, relatively,
and nothing else of the project."""
