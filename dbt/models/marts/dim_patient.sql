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

response_at_landmark as (

    -- the same rule over the assessments before the landmark (macros/best_overall_response.sql)
    select * from {{ ref('int_best_overall_response_at_landmark') }}

),

response_groups as (

    -- RECIST 1.1 response -> 'CR/PR' / 'SD/PD' (NE has no row: no group)
    select best_overall_response, objective_response_group from {{ ref('response_groups') }}

),

ki67_groups as (

    -- WHO 2010/2019 grading of GEP-NETs by Ki-67: '< 3%', '3-20%', '> 20%'
    select * from {{ ref('ki67_groups') }}

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
        ki67_groups.ki67_group,
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
        {{ cycles_group('patients.n_cycles') }} as cycles_group,
        patients.n_cycles_at_landmark,
        patients.cumulative_activity_gbq_at_landmark,
        {{ cycles_group('patients.n_cycles_at_landmark') }} as cycles_group_at_landmark,

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
        best_response_groups.objective_response_group as best_response_group,
        response_at_landmark.best_overall_response as best_overall_response_at_landmark,
        best_response_groups_at_landmark.objective_response_group as best_response_group_at_landmark,

        ---------- toxicity
        toxicity.worst_ctcae_grade,
        toxicity.worst_grade_anemia,
        toxicity.worst_grade_wbc_decreased,
        toxicity.worst_grade_platelet_count_decreased,
        toxicity.worst_grade_creatinine_increased,
        {{ toxicity_grade_group('toxicity.worst_ctcae_grade', 'patients.is_treated') }} as toxicity_grade_group,
        toxicity.worst_ctcae_grade_at_landmark,
        {{ toxicity_grade_group('toxicity.worst_ctcae_grade_at_landmark', 'patients.is_treated') }}
            as toxicity_grade_group_at_landmark,

        ---------- survival
        survival.vital_status,
        survival.os_months,
        survival.os_event

    from patients
    left join performance_status on patients.patient_key = performance_status.patient_key
    left join response on patients.patient_key = response.patient_key
    left join response_at_landmark on patients.patient_key = response_at_landmark.patient_key
    left join response_groups as best_response_groups
        on response.best_overall_response = best_response_groups.best_overall_response
    left join response_groups as best_response_groups_at_landmark
        on response_at_landmark.best_overall_response = best_response_groups_at_landmark.best_overall_response
    left join ki67_groups
        on (patients.ki67_percent > ki67_groups.lower_percent
            or (ki67_groups.lower_inclusive and patients.ki67_percent = ki67_groups.lower_percent))
        and (patients.ki67_percent < ki67_groups.upper_percent
            or (ki67_groups.upper_inclusive and patients.ki67_percent = ki67_groups.upper_percent))
    left join survival on patients.patient_key = survival.patient_key
    left join toxicity on patients.patient_key = toxicity.patient_key
    left join tumour_change on patients.patient_key = tumour_change.patient_key
    left join chromogranin_a on patients.patient_key = chromogranin_a.patient_key

)

select * from final
