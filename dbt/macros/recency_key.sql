{#-
    A row's place in "latest first" order as one HUGEINT: the date, then the export line
    (record_id, a non-negative BIGINT: file_id * 10^10 + line, prrt/ingest/loader.py) to break ties
    on a date. max(recency_key(...)) is the latest row, and arg_max(x, recency_key(...)) its x.

    Why not max({date, record_id, x}) on a struct: DuckDB keeps a struct aggregate's state as a
    variable-size sort key outside its spillable memory, and at a million patients several of those
    aggregates in one query (dim_patient) ran out of the 3 GB limit; a HUGEINT state is fixed-size.
-#}
{% macro recency_key(date_column, record_id_column) -%}
    (cast(date_diff('day', date '1970-01-01', {{ date_column }}) as hugeint) * 18446744073709551616 + {{ record_id_column }})
{%- endmacro %}

{#-
    A row's place in "earliest first" order, as one HUGEINT like recency_key: the date, and on a
    date the later export line first (the same tie rule as recency_key: a repeated assessment on a
    day is taken to correct the earlier line). arg_min(x, earliness_key(...)) is the first row's x.
    record_id < 2^63, so subtracting it never reaches the previous day.
-#}
{% macro earliness_key(date_column, record_id_column) -%}
    (cast(date_diff('day', date '1970-01-01', {{ date_column }}) as hugeint) * 18446744073709551616 - {{ record_id_column }})
{%- endmacro %}
