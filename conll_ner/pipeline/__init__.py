"""Code that trained pipelines run when they load and predict, so it travels
inside packaged pipelines (conll_ner/packaging/package.py ships every module here): each
module imports nothing else from the project."""
