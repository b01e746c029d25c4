with

toxicity as (

    select * from {{ ref('int_toxicity_by_patient_term') }}

)

select
    patient_key,
    ctcae_term,
    analyte,
    baseline_date,
    baseline_value,
    baseline_grade,
    worst_grade,
    worst_grade_at_landmark,
    worst_grade_date,
    first_onset_date,
    is_worse_than_baseline,
    treatment_emergent_grade,
    n_post_baseline_samples,
    n_post_baseline_graded_samples

from toxicity
