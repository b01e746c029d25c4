-- One row per administration, with the interval since the patient's previous administration.

with

cycles as (

    select * from {{ ref('stg_cycles') }}

),

treatment as (

    select patient_key, first_cycle_date from {{ ref('int_treatment_summary') }}

),

sequenced as (

    select
        cycles.patient_key,
        cycles.cycle_number,
        cycles.administration_date,
        round(cycles.activity_gbq, 4) as activity_gbq,
        cycles.amino_acid_infusion,
        row_number() over patient_cycles as administration_sequence,
        date_diff('day', treatment.first_cycle_date, cycles.administration_date) as days_from_first_cycle,
        date_diff(
            'day',
            lag(cycles.administration_date) over patient_cycles,
            cycles.administration_date
        ) as days_since_previous_cycle

    from cycles
    inner join treatment on cycles.patient_key = treatment.patient_key
    window patient_cycles as (
        partition by cycles.patient_key
        order by cycles.administration_date, cycles.cycle_number, cycles.record_id
    )

),

final as (

    select
        *,
        round(days_since_previous_cycle / 7.0, 2) as weeks_since_previous_cycle

    from sequenced

)

select * from final
