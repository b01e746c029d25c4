-- One row per patient x CTCAE-graded analyte with at least one post-baseline value: the worst
-- post-baseline value (the nadir: lowest for an analyte whose toxicity is a decrease, highest for
-- one whose toxicity is an increase, by the direction of seed ctcae_v4_03_lab_criteria) and the
-- first day it was reached. Post-baseline = samples strictly after the first administration.

with

directions as (

    -- one direction per analyte (the seed repeats it on every grade row)
    select distinct
        analyte,
        case direction when 'low' then 'lowest' when 'high' then 'highest' end as direction

    from {{ ref('ctcae_v4_03_lab_criteria') }}

),

post_baseline as (

    -- the materialised graded labs; analytes without CTCAE criteria (chromogranin A) drop out here
    select
        labs.patient_key,
        labs.analyte,
        labs.unit,
        labs.value,
        labs.baseline_value,
        labs.days_from_first_cycle,
        directions.direction,
        -- smaller is worse, so the nadir is the row with the smallest (worse_first, day)
        case directions.direction when 'lowest' then labs.value else -labs.value end as worse_first

    from {{ ref('fct_lab_result') }} as labs
    inner join directions
        on labs.analyte = directions.analyte
    where labs.is_post_baseline
        and labs.value is not null
        {{ in_refresh_scope('and', 'labs.patient_key') }}

),

nadir as (

    select
        patient_key,
        analyte,
        direction,
        -- the same on every row of a patient's analyte in fct_lab_result
        any_value(unit) as unit,
        any_value(baseline_value) as baseline_value,
        min(worse_first) as worst,
        -- the first day the worst value was reached: the smallest (worse_first, day)
        arg_min(days_from_first_cycle, (worse_first, days_from_first_cycle)) as days_to_nadir,
        count(*) as n_post_baseline_samples

    from post_baseline
    group by patient_key, analyte, direction

),

final as (

    select
        patient_key,
        analyte,
        unit,
        direction,
        baseline_value,
        case direction when 'lowest' then worst else -worst end as nadir_value,
        days_to_nadir,
        n_post_baseline_samples

    from nadir

)

select
    patient_key,
    analyte,
    unit,
    direction,
    baseline_value,
    nadir_value,
    days_to_nadir,
    case
        when baseline_value > 0 then 100 * (nadir_value - baseline_value) / baseline_value
    end as pct_change_from_baseline,
    n_post_baseline_samples

from final
