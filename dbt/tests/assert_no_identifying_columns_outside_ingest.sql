-- Contract section 4: no full name, hospital record number or birth date in `marts`
-- (and no name or record number anywhere downstream of `ingest` but the identifying lineage
-- schema; birth_date may appear in staging/intermediate only, to derive age; full_name is
-- dropped at ingestion and appears nowhere). Also fails when no marts table exists at all,
-- so that the test cannot pass vacuously.
-- depends_on: {{ ref('dim_patient') }}
-- depends_on: {{ ref('fct_treatment_cycle') }}
-- depends_on: {{ ref('fct_lab_result') }}
-- depends_on: {{ ref('fct_toxicity') }}
-- depends_on: {{ ref('fct_tumour_assessment') }}
-- depends_on: {{ ref('fct_survival') }}

with

columns as (

    select table_schema, table_name, lower(column_name) as column_name
    from information_schema.columns
    where table_catalog = '{{ target.database }}'

),

identifying_columns as (

    select table_schema, table_name, column_name
    from columns
    where (table_schema = 'marts' and column_name in ('patient_id', 'full_name', 'birth_date'))
        or (table_schema in ('staging', 'intermediate') and column_name in ('patient_id', 'full_name'))
        or column_name = 'full_name'

),

missing_marts as (

    select 'marts' as table_schema, '(no table)' as table_name, '(none)' as column_name
    where not exists (select 1 from columns where table_schema = 'marts')

)

select * from identifying_columns
union all
select * from missing_marts
