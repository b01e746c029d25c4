-- One row per treated patient: worst post-baseline CTCAE grade per Table 2 term and over all terms,
-- and over all terms before the landmark (fct_toxicity.worst_grade_at_landmark).

with

toxicity as (

    -- the materialised fct_toxicity (same rows as int_toxicity_by_patient_term), so the
    -- per-term aggregation over every graded lab result runs once per refresh, not twice
    select * from {{ ref('fct_toxicity') }}
    {{ in_refresh_scope() }}

),

pivoted as (

    select
        patient_key,
        max(worst_grade) as worst_ctcae_grade,
        max(worst_grade_at_landmark) as worst_ctcae_grade_at_landmark,
        max(worst_grade) filter (where ctcae_term = 'Anemia') as worst_grade_anemia,
        max(worst_grade) filter (where ctcae_term = 'White blood cell decreased') as worst_grade_wbc_decreased,
        max(worst_grade) filter (where ctcae_term = 'Platelet count decreased') as worst_grade_platelet_count_decreased,
        max(worst_grade) filter (where ctcae_term = 'Creatinine increased') as worst_grade_creatinine_increased

    from toxicity
    group by patient_key

)

select * from pivoted
