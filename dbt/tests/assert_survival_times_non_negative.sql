-- Overall survival can not be negative: an end date (death or last contact) before the first
-- administration is a data error that ingestion should have rejected.
select *
from {{ ref('fct_survival') }}
where os_days < 0 or os_months < 0
