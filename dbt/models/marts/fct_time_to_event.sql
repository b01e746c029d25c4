with

time_to_event as (

    select * from {{ ref('int_time_to_event') }}

)

select
    patient_key,
    endpoint,
    start_date,
    end_date,
    days,
    months,
    event,
    event_or_censor_reason

from time_to_event
