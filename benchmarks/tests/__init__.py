"""The harness's tests: a package, so that their conftest and modules
(tests.conftest, tests.test_...) never take the names of the product's
tests/ modules (conftest, ...), which run in the same pytest session."""
