-- The tumour assessments RECIST 1.1 reads: CT and MRI (seed imaging_modalities, is_recist), of
-- treated patients, timed from the first administration. Every RECIST rule (best overall
-- response, confirmation, PFS/TTP/DoR/TTR) starts from this one model.

with

assessments as (

    select * from {{ ref('stg_tumour_assessments') }}

),

modalities as (

    select modality from {{ ref('imaging_modalities') }} where is_recist

),

treatment as (

    select patient_key, first_cycle_date from {{ ref('int_treatment_summary') }}

),

final as (

    select
        assessments.patient_key,
        assessments.assessment_date,
        assessments.modality,
        assessments.recist_response,
        assessments.sum_of_diameters_mm,
        date_diff('day', treatment.first_cycle_date, assessments.assessment_date) as days_from_first_cycle,
        assessments.assessment_date > treatment.first_cycle_date as is_post_baseline,
        assessments.record_id

    from assessments
    inner join modalities on assessments.modality = modalities.modality
    inner join treatment on assessments.patient_key = treatment.patient_key

)

select * from final
