"""SQL for parsing and checking one column of text, generated from its ``spec.Column``.

Each column gives named expressions over its text (the text itself, the typed value and,
for integers, the number read) and a list of problem expressions over those names, each
either NULL (fine) or a struct {field, value, reason} that lands in ``audit.rejected_rows``.
The loader selects the expressions in an inner query and the problems in the outer one,
so each value is parsed once however many checks look at it.
"""

from __future__ import annotations

from dataclasses import dataclass

from .spec import Column

TRUE_WORDS = ("yes", "y", "1", "+", "true")
FALSE_WORDS = ("no", "n", "0", "-", "false")
DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y")  # ISO or DD/MM/YYYY (contract section 2)
EARLIEST_DATE = "1900-01-01"  # no birth or clinical date of a living cohort is older
# A number as the contract allows it: digits, one decimal point (a comma in semicolon files),
# an optional sign and exponent. DuckDB's own cast also reads digit separators ('1_3' = 13).
THOUSANDS_GROUPING = r"[+-]?\d{1,3}(\.\d{3})+"  # '1.234' in a decimal-comma file: 1234 or 1.234?


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
    """The list of a row's problems, NULL when it has none. Most rows have none: the list is
    only built for rows where some condition holds, so clean rows cost a few comparisons,
    not allocations, and store nothing but a NULL."""
    if not problems:
        return f"CAST(NULL AS {PROBLEM_TYPE}[])"
    # A NULL condition counts as false: CASE takes a branch only when its condition is true.
    any_problem = " OR ".join(f"({p.condition})" for p in problems)
    items = ", ".join(str(p) for p in problems)
    return f"CASE WHEN {any_problem} THEN list_filter([{items}], lambda p: p IS NOT NULL) END"


def number_text(raw: str, decimal_comma: bool) -> str:
    return f"replace({raw}, ',', '.')" if decimal_comma else raw


def parse_date(raw: str) -> str:
    tries = ", ".join(f"try_strptime({raw}, {quote(f)})" for f in DATE_FORMATS)
    return f"CAST(coalesce({tries}) AS DATE)"


@dataclass(frozen=True)
class ColumnSQL:
    """A column's parsing: ``values`` are (name, expression over the text) -- ``raw_<name>``
    (the text), ``<name>`` (the typed value) and helpers; ``problems`` refer to those
    names, prefixed with the alias of the query that selects them."""

    values: list[tuple[str, str]]
    problems: list[Problem]


def column_parts(col: Column, raw: str, decimal_comma: bool, alias: str = "t.") -> ColumnSQL:
    """The typed value of the text column ``raw`` and its checks."""
    name = col.name
    ref_raw, ref = f"{alias}raw_{name}", f"{alias}{name}"
    values = [(f"raw_{name}", raw)]
    problems = []
    if col.required:
        problems.append(problem(name, ref_raw, f"{ref_raw} IS NULL", quote("missing required value")))

    if col.kind == "text":
        values.append((name, raw))
        return ColumnSQL(values, problems)

    if col.kind == "date":
        # ``_parsed_<name>``: the text read as a date; ``<name>``: only a plausible one (from
        # EARLIEST_DATE to today), so that the rules built on dates (before birth, before the
        # first cycle) see no date that is itself rejected.
        parsed = f"{alias}_parsed_{name}"
        values += [(f"_parsed_{name}", parse_date(raw)),
                   (name, f"CASE WHEN {parse_date(raw)} BETWEEN DATE {quote(EARLIEST_DATE)} AND current_date"
                          f" THEN {parse_date(raw)} END")]
        problems.append(problem(name, ref_raw, f"{ref_raw} IS NOT NULL AND {parsed} IS NULL",
                                quote("unparseable date (expected YYYY-MM-DD or DD/MM/YYYY)")))
        # '27/06/64' reads as the year 64: a two-digit year is never guessed (1964? 2064?)
        problems.append(problem(name, ref_raw, f"year({parsed}) < 100",
                                quote("four-digit year required (YYYY-MM-DD or DD/MM/YYYY): a two-digit year is not guessed")))
        problems.append(problem(name, ref_raw, f"year({parsed}) >= 100 AND {parsed} < DATE {quote(EARLIEST_DATE)}",
                                quote(f"date before {EARLIEST_DATE[:4]}")))
        problems.append(problem(name, ref_raw, f"{parsed} > current_date", quote("date after today")))
        return ColumnSQL(values, problems)

    if col.kind == "enum":
        norm = f"upper({raw})" if col.upper else f"lower({raw})"
        whens = [f"WHEN {quote(a.upper() if col.upper else a.lower())} THEN {quote(c)}" for a, c in col.aliases.items()]
        whens += [f"WHEN {quote(v)} THEN {quote(v)}" for v in col.values]
        values.append((name, f"CASE {norm} {' '.join(whens)} END"))
        allowed = ", ".join(col.values)
        problems.append(problem(name, ref_raw, f"{ref_raw} IS NOT NULL AND {ref} IS NULL",
                                quote(f"not one of: {allowed}")))
        return ColumnSQL(values, problems)

    if col.kind == "bool":
        values.append((name, f"CASE WHEN lower({raw}) IN {sql_list(TRUE_WORDS)} THEN true "
                             f"WHEN lower({raw}) IN {sql_list(FALSE_WORDS)} THEN false END"))
        problems.append(problem(name, ref_raw, f"{ref_raw} IS NOT NULL AND {ref} IS NULL",
                                quote("not a yes/no value (yes/no, y/n, 1/0, +/-)")))
        return ColumnSQL(values, problems)

    # integer | number: the text read as a DOUBLE once; an integer keeps that DOUBLE as
    # ``_num_<name>`` for its checks and is the INTEGER only when whole (TRY_CAST: a whole
    # number beyond the INTEGER range is a rejected row, not a failed load)
    # a digit separator ('1_3') never reads as a number; DuckDB's cast would take it
    num = f"CASE WHEN NOT contains({raw}, '_') THEN TRY_CAST({number_text(raw, decimal_comma)} AS DOUBLE) END"
    if col.kind == "integer":
        whole = f"CASE WHEN {num} = round({num}) THEN TRY_CAST({num} AS INTEGER) END"
        values += [(f"_num_{name}", num), (name, whole)]
        checked = f"{alias}_num_{name}"
    else:
        values.append((name, num))
        checked = ref
    problems.append(problem(name, ref_raw, f"{ref_raw} IS NOT NULL AND {checked} IS NULL",
                            quote("not a number")))
    if decimal_comma:
        problems.append(problem(name, ref_raw, f"contains({ref_raw}, '.') AND regexp_full_match({ref_raw}, "
                                               f"{quote(THOUSANDS_GROUPING)})",
                                quote("ambiguous number in a decimal-comma file: '.' may group thousands "
                                      "(write 1234, or 1,234 for a decimal)")))
    # 'inf', '-inf' and 'nan' read as DOUBLEs; no clinical value is one
    problems.append(problem(name, ref_raw, f"NOT isfinite({checked})", quote("not a finite number")))
    if col.kind == "integer":
        problems.append(problem(name, ref_raw, f"isfinite({checked}) AND {checked} = round({checked}) AND {ref} IS NULL",
                                quote("whole number out of range")))
    if col.kind == "integer":
        problems.append(problem(name, ref_raw, f"{checked} <> round({checked})", quote("not a whole number")))
        if col.step:
            problems.append(problem(name, ref_raw, f"isfinite({checked}) AND {checked} % {col.step} <> 0",
                                    quote(f"not a multiple of {col.step}")))
    if col.min is not None:
        problems.append(problem(name, ref_raw, f"isfinite({checked}) AND {checked} < {col.min}",
                                quote(f"below the allowed minimum {col.min:g}")))
    if col.max is not None:
        problems.append(problem(name, ref_raw, f"isfinite({checked}) AND {checked} > {col.max}",
                                quote(f"above the allowed maximum {col.max:g}")))
    return ColumnSQL(values, problems)
