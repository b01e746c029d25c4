with

patients as (

    select * from {{ ref('int_patients') }}

),

performance_status as (

    select * from {{ ref('int_performance_status_pre_post') }}

),

response as (

    select * from {{ ref('int_best_overall_response') }}

),

survival as (

    select * from {{ ref('int_survival') }}

),

toxicity as (

    select * from {{ ref('int_toxicity_by_patient') }}

),

tumour_change as (

    -- the waterfall plot's bar: each patient's best (lowest) post-baseline change, read from the
    -- built fct_tumour_assessment rather than recomputing its baselines (CT/MRI only: PET rows
    -- carry no percent change, int_tumour_assessments)
    select
        patient_key,
        min(pct_change_from_baseline_sum) as best_pct_change_from_baseline_sum

    from {{ ref('fct_tumour_assessment') }}
    where is_post_baseline
        and pct_change_from_baseline_sum is not null
        {{ in_refresh_scope('and') }}
    group by patient_key

),

chromogranin_a as (

    -- tumour marker before/after PRRT (Table 1's CgA column): int_chromogranin_a_pre_post
    select * from {{ ref('int_chromogranin_a_pre_post') }}

),

final as (

    select
        ---------- ids
        patients.patient_key,

        ---------- characteristics
        patients.sex,
        patients.age_at_first_cycle,
        patients.primary_site,
        patients.tumour_grade,
        patients.ki67_percent,
        patients.prior_surgery,
        patients.prior_chemotherapy,
        patients.prior_radiotherapy,
        patients.hypertension,
        patients.diabetes,
        patients.baseline_imaging,
        patients.krenning_score,
        patients.suvmax,
        patients.metastatic_sites,
        patients.n_metastatic_sites,

        ---------- treatment
        patients.is_treated,
        patients.first_cycle_date,
        patients.last_cycle_date,
        patients.n_cycles,
        patients.cumulative_activity_gbq,

        ---------- tumour marker (chromogranin A, ng/mL)
        chromogranin_a.cga_pre_ng_ml,
        chromogranin_a.cga_post_ng_ml,

        ---------- performance status
        performance_status.ecog_pre,
        performance_status.ecog_post,
        performance_status.kps_pre,
        performance_status.kps_post,

        ---------- response
        response.best_overall_response,
        response.confirmed_best_overall_response,
        tumour_change.best_pct_change_from_baseline_sum,

        ---------- toxicity
        toxicity.worst_ctcae_grade,
        toxicity.worst_grade_anemia,
        toxicity.worst_grade_wbc_decreased,
        toxicity.worst_grade_platelet_count_decreased,
        toxicity.worst_grade_creatinine_increased,

        ---------- survival
        survival.vital_status,
        survival.os_months,
        survival.os_event

    from patients
    left join performance_status on patients.patient_key = performance_status.patient_key
    left join response on patients.patient_key = response.patient_key
    left join survival on patients.patient_key = survival.patient_key
    left join toxicity on patients.patient_key = toxicity.patient_key
    left join tumour_change on patients.patient_key = tumour_change.patient_key
    left join chromogranin_a on patients.patient_key = chromogranin_a.patient_key

)

select * from final
