with

assessments as (

    select * from {{ ref('int_tumour_assessments') }}

)

select
    patient_key,
    assessment_date,
    modality,
    is_recist,
    recist_response,
    sum_of_diameters_mm,
    days_from_first_cycle,
    is_post_baseline,
    baseline_sum_of_diameters_mm,
    pct_change_from_baseline_sum

from assessments
