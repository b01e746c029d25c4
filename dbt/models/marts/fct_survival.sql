with

survival as (

    select * from {{ ref('int_survival') }}

)

select
    patient_key,
    start_date,
    end_date,
    end_date_source,
    vital_status,
    os_days,
    os_months,
    os_event

from survival
