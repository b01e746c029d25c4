"""SQL for parsing and checking one column of text, generated from its ``spec.Column``.

Each column gives a typed expression and a list of problem expressions, each either
NULL (fine) or a struct {field, value, reason} that lands in ``audit.rejected_rows``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .spec import Column

TRUE_WORDS = ("yes", "y", "1", "+", "true")
FALSE_WORDS = ("no", "n", "0", "-", "false")
DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y")  # ISO or DD/MM/YYYY (contract section 2)


def quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def sql_list(values) -> str:
    return "(" + ", ".join(quote(v) for v in values) + ")"


PROBLEM_TYPE = "STRUCT(field VARCHAR, value VARCHAR, reason VARCHAR)"


@dataclass(frozen=True)
class Problem:
    """A check on one row: when ``condition`` holds, {field, value, reason} is recorded."""

    condition: str
    struct: str

    def __str__(self) -> str:
        return f"CASE WHEN {self.condition} THEN {self.struct} END"


def problem(field: str, raw: str, condition: str, reason_sql: str) -> Problem:
    return Problem(condition, f"{{'field': {quote(field)}, 'value': {raw}, 'reason': {reason_sql}}}")


def problem_list(problems: list[Problem]) -> str:
    """The list of a row's problems. Most rows have none: the list is only built for rows
    where some condition holds, so clean rows cost a few comparisons, not allocations."""
    if not problems:
        return f"CAST([] AS {PROBLEM_TYPE}[])"
    any_problem = " OR ".join(f"coalesce({p.condition}, false)" for p in problems)
    items = ", ".join(str(p) for p in problems)
    return (f"CASE WHEN {any_problem} THEN list_filter([{items}], lambda p: p IS NOT NULL) "
            f"ELSE CAST([] AS {PROBLEM_TYPE}[]) END")


def number_text(raw: str, decimal_comma: bool) -> str:
    return f"replace({raw}, ',', '.')" if decimal_comma else raw


def parse_date(raw: str) -> str:
    tries = ", ".join(f"try_strptime({raw}, {quote(f)})" for f in DATE_FORMATS)
    return f"CAST(coalesce({tries}) AS DATE)"


def column_sql(col: Column, raw: str, decimal_comma: bool) -> tuple[str, list[Problem]]:
    """(typed expression, problem expressions) for the text column ``raw``."""
    name = col.name
    problems = []
    if col.required:
        problems.append(problem(name, raw, f"{raw} IS NULL", quote("missing required value")))

    if col.kind == "text":
        return raw, problems

    if col.kind == "date":
        typed = parse_date(raw)
        problems.append(problem(name, raw, f"{raw} IS NOT NULL AND {typed} IS NULL",
                                quote("unparseable date (expected YYYY-MM-DD or DD/MM/YYYY)")))
        problems.append(problem(name, raw, f"{typed} > current_date", quote("date after today")))
        return typed, problems

    if col.kind == "enum":
        norm = f"upper({raw})" if col.upper else f"lower({raw})"
        whens = [f"WHEN {quote(a.upper() if col.upper else a.lower())} THEN {quote(c)}" for a, c in col.aliases.items()]
        whens += [f"WHEN {quote(v)} THEN {quote(v)}" for v in col.values]
        typed = f"CASE {norm} {' '.join(whens)} END"
        allowed = ", ".join(col.values)
        problems.append(problem(name, raw, f"{raw} IS NOT NULL AND {typed} IS NULL",
                                quote(f"not one of: {allowed}")))
        return typed, problems

    if col.kind == "bool":
        typed = (f"CASE WHEN lower({raw}) IN {sql_list(TRUE_WORDS)} THEN true "
                 f"WHEN lower({raw}) IN {sql_list(FALSE_WORDS)} THEN false END")
        problems.append(problem(name, raw, f"{raw} IS NOT NULL AND {typed} IS NULL",
                                quote("not a yes/no value (yes/no, y/n, 1/0, +/-)")))
        return typed, problems

    # integer | number
    num = f"TRY_CAST({number_text(raw, decimal_comma)} AS DOUBLE)"
    problems.append(problem(name, raw, f"{raw} IS NOT NULL AND {num} IS NULL", quote("not a number")))
    if col.kind == "integer":
        problems.append(problem(name, raw, f"{num} <> round({num})", quote("not a whole number")))
        if col.step:
            problems.append(problem(name, raw, f"{num} % {col.step} <> 0",
                                    quote(f"not a multiple of {col.step}")))
    if col.min is not None:
        problems.append(problem(name, raw, f"{num} < {col.min}", quote(f"below the allowed minimum {col.min:g}")))
    if col.max is not None:
        problems.append(problem(name, raw, f"{num} > {col.max}", quote(f"above the allowed maximum {col.max:g}")))
    typed = f"CAST({num} AS INTEGER)" if col.kind == "integer" else num
    if col.kind == "integer":
        typed = f"CASE WHEN {num} = round({num}) THEN {typed} END"
    return typed, problems
