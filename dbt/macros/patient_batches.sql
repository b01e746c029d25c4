{#-
    Full builds of the largest marts in patient batches. Built in one statement, fct_lab_result at a
    million patients (~107 million lab rows through the per patient x analyte baseline and the
    CTCAE grading) needs far more memory than a modest machine gives DuckDB: it spilled over 30 GB
    to disk at a 3 GB memory limit. A batch is a range of patient_key (a uniformly distributed hex
    HMAC, prrt/pseudonym.py), so each batch holds about 1/N of the patients, and DuckDB pushes a
    range condition through the intermediate views' joins and aggregates on patient_key down to the
    scans of ingest.labs: each batch computes only its own patients' rows.

    In a model, after the ref it reads:
        where {{ first_patient_batch(source('ingest', 'labs')) }}
    and in its config: post_hook="{{ insert_remaining_patient_batches() }}".
    On a full build N = the rows of the given relation / var('patient_batch_rows'), rounded up to a
    power of two (at most 256); the model's statement creates the table from batch 1 and the hook
    inserts batches 2..N with the same compiled SQL, the range swapped. An incremental build (only
    the refreshed patients, refresh_scope.sql) is small and runs in one statement: the condition
    renders `true` and the hook nothing.
-#}

{% macro patient_batch_condition(batch, n, column='patient_key') -%}
    {#- batch 1..n: a range of the key's first two hex digits; the first and last ranges are open,
        so every key lands in exactly one batch whatever its characters -#}
    {%- set conditions = [] -%}
    {%- if batch > 1 -%}
        {%- do conditions.append(column ~ " >= '" ~ ('%02x' % (256 * (batch - 1) // n)) ~ "'") -%}
    {%- endif -%}
    {%- if batch < n -%}
        {%- do conditions.append(column ~ " < '" ~ ('%02x' % (256 * batch // n)) ~ "'") -%}
    {%- endif -%}
    {{- '(' ~ (conditions | join(' and ') if conditions else 'true') ~ ') /* patient batch ' ~ batch ~ ' of ' ~ n ~ ' */' -}}
{%- endmacro %}


{% macro patient_batch_count(sized_by) -%}
    {#- one batch when the relation is not there to count (e.g. `dbt compile` on an empty database) -#}
    {%- if adapter.get_relation(database=sized_by.database, schema=sized_by.schema, identifier=sized_by.identifier) is none -%}
        {{- return(1) -}}
    {%- endif -%}
    {%- set rows = run_query('select count(*) from ' ~ sized_by).columns[0].values()[0] -%}
    {%- set per_batch = var('patient_batch_rows') | int -%}
    {%- set n = namespace(value=1) -%}
    {%- for _ in range(8) -%}
        {%- if n.value * per_batch < rows -%}
            {%- set n.value = n.value * 2 -%}
        {%- endif -%}
    {%- endfor -%}
    {{- return(n.value) -}}
{%- endmacro %}


{% macro first_patient_batch(sized_by, column='patient_key') -%}
    {%- if execute and not is_incremental() -%}
        {{ patient_batch_condition(1, patient_batch_count(sized_by), column) }}
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}


{% macro insert_remaining_patient_batches(column='patient_key') -%}
    {%- if not execute -%}
        {{ return('') }}
    {%- endif -%}
    {%- set found = modules.re.findall('/\\* patient batch 1 of (\\d+) \\*/', model.compiled_code) -%}
    {%- if found | length > 1 -%}
        {{ exceptions.raise_compiler_error(model.name ~ ": first_patient_batch() may appear once in a model") }}
    {%- endif -%}
    {%- set n = (found[0] | int) if found else 1 -%}
    {%- set first = patient_batch_condition(1, n, column) -%}
    {%- if n > 1 and first not in model.compiled_code -%}
        {{ exceptions.raise_compiler_error(model.name ~ ": insert_remaining_patient_batches() must be given the column given to first_patient_batch()") }}
    {%- endif -%}
    {%- for batch in range(2, n + 1) -%}
        insert into {{ this }} select * from (
{{ model.compiled_code.replace(first, patient_batch_condition(batch, n, column)) }}
        );
    {% endfor -%}
{%- endmacro %}
