-- RECIST 1.1 measures on CT and MRI (seed imaging_modalities); Ga-68 DOTATATE PET is shown beside it,
-- never ranked with it (contract section 4, v2). On the built marts, whatever the export:
--   - every best response other than NE was seen as such on a post-baseline CT/MRI assessment (a CR
--     seen only on PET is not a CR); a confirmed SD may come from a CR, PR or SD;
--   - no PET row carries a percent change, so none becomes a waterfall bar.
with

recist_assessments as (

    select patient_key, recist_response
    from {{ ref('fct_tumour_assessment') }}
    where is_recist and is_post_baseline

),

responses as (

    select patient_key, 'best_overall_response' as measure, best_overall_response as response
    from {{ ref('dim_patient') }}
    where best_overall_response in ('CR', 'PR', 'SD', 'PD')

    union all

    select patient_key, 'confirmed_best_overall_response' as measure, confirmed_best_overall_response as response
    from {{ ref('dim_patient') }}
    where confirmed_best_overall_response in ('CR', 'PR', 'SD', 'PD')

)

select responses.patient_key, responses.measure, responses.response as violation
from responses
where not exists (
    select 1
    from recist_assessments
    where recist_assessments.patient_key = responses.patient_key
        and (
            recist_assessments.recist_response = responses.response
            or (responses.measure = 'confirmed_best_overall_response' and responses.response = 'SD'
                and recist_assessments.recist_response in ('CR', 'PR', 'SD'))
        )
)

union all

select patient_key, 'pct_change_from_baseline_sum' as measure, modality as violation
from {{ ref('fct_tumour_assessment') }}
where not is_recist and pct_change_from_baseline_sum is not null
