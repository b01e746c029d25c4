-- A full build runs in patient batches (macros/patient_batches.sql).
{{ config(post_hook="{{ insert_remaining_patient_batches() }}") }}

with

labs as (

    select * from {{ ref('int_lab_results_graded') }}
    where {{ first_patient_batch(source('ingest', 'labs')) }}

)

select
    patient_key,
    sample_date,
    analyte,
    value,
    unit,
    lln,
    uln,
    lln_source,
    uln_source,
    baseline_value,
    ctcae_term,
    ctcae_grade,
    is_baseline,
    is_post_baseline,
    days_from_first_cycle

from labs
