{#-
    The refresh scope. A full refresh (`dbt build --full-refresh`) rebuilds every patient. An
    incremental refresh (`--vars '{refresh_scope: touched_patients}'`, set by the orchestrator when
    the export only gained files) rebuilds only the patients with rows new in this refresh, listed
    by ingestion in source `ingest.touched_patients`:

    - every staging model reads its source through `in_refresh_scope()`, so the whole chain
      (intermediate views, baselines, CTCAE grading) works on those patients alone. The
      filter sits here, at the start, because DuckDB does not push a patient filter placed on a
      mart down through every intermediate view (it did not through the window functions). Models that read an already
      built mart (fct_lab_result, graded once per refresh; fct_toxicity) apply it there too;
    - the marts are incremental tables, delete+insert on patient_key: the touched patients' old
      rows are replaced by their rebuilt ones, every other patient's rows stay as they are;
    - data tests on marts and sources check the rebuilt patients' rows (get_where_subquery below);
      the rest were checked on the night they were built.

    After the build the orchestrator recreates the views without the filter, so the published
    views read every patient (dagster_project/assets/dbt.py).
-#}

{% macro refresh_scope_is_touched_patients() -%}
    {%- set scope = var('refresh_scope', 'all') -%}
    {%- if scope not in ('all', 'touched_patients') -%}
        {{ exceptions.raise_compiler_error("var refresh_scope must be 'all' or 'touched_patients', not '" ~ scope ~ "'") }}
    {%- endif -%}
    {%- if scope == 'touched_patients' and flags.FULL_REFRESH -%}
        {{ exceptions.raise_compiler_error("refresh_scope 'touched_patients' with --full-refresh would rebuild the marts from the touched patients alone") }}
    {%- endif -%}
    {{ return(scope == 'touched_patients') }}
{%- endmacro %}


{#-
    `{{ in_refresh_scope() }}` after a source's `from`; `{{ in_refresh_scope('and', 'labs.patient_key') }}`
    after an existing condition. Renders nothing outside an incremental refresh.
-#}
{% macro in_refresh_scope(keyword='where', column='patient_key') -%}
    {#- rendered unconditionally, so that dbt records the dependency at parse time -#}
    {%- set touched_patients = source('ingest', 'touched_patients') -%}
    {%- if refresh_scope_is_touched_patients() -%}
    {{ keyword }} {{ column }} in (select patient_key from {{ touched_patients }})
    {%- endif -%}
{%- endmacro %}


{#- dbt's hook for a data test's `where` config, extended with the refresh scope: -#}
{% macro get_where_subquery(relation) -%}
    {%- set conditions = [] -%}
    {%- if config.get('where') -%}
        {%- do conditions.append('(' ~ config.get('where') ~ ')') -%}
    {%- endif -%}
    {%- if relation.schema in ('marts', 'ingest') -%}
        {%- set scope = in_refresh_scope(keyword='') | trim -%}
        {%- if scope -%}
            {%- do conditions.append(scope) -%}
        {%- endif -%}
    {%- endif -%}
    {%- if conditions -%}
        {%- do return('(select * from ' ~ relation ~ ' where ' ~ conditions | join(' and ') ~ ') dbt_subquery') -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}
