"""Exit codes of every loaderbench command, and the error that maps to "unusable input"."""

EXIT_OK = 0  # no regression (or nothing to judge)
EXIT_REGRESSION = 1  # a benchmark or derived ratio regressed
EXIT_USAGE = 2  # unusable input: missing or corrupt file, wrong schema, unknown name, ...
EXIT_INCONCLUSIVE = 3  # with --strict: no regression, but rows the data could not judge
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT, as shells report it); nothing half-written


class InputError(Exception):
    """Input the command cannot use. The message is one line: what is wrong and what to do."""
