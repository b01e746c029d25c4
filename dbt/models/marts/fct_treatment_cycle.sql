with

cycles as (

    select * from {{ ref('int_treatment_cycles') }}

)

select
    patient_key,
    cycle_number,
    administration_sequence,
    administration_date,
    activity_gbq,
    amino_acid_infusion,
    days_from_first_cycle,
    days_since_previous_cycle,
    weeks_since_previous_cycle

from cycles
