{#-
    Incremental marts are rebuilt per patient: in an incremental refresh only the patients
    with rows new in this refresh (source `ingest.touched_patients`, written by ingestion) are
    recomputed; their old rows are deleted and the new ones inserted (delete+insert on
    patient_key). A full refresh (`dbt build --full-refresh`) rebuilds everything.
-#}
{% macro only_touched_patients(column='patient_key') -%}
    {% if is_incremental() -%}
    where {{ column }} in (select patient_key from {{ source('ingest', 'touched_patients') }})
    {%- endif %}
{%- endmacro %}
