-- Shared helpers. The run sets these variables before any SQL runs:
--   billing_tz (VARCHAR), as_of (DATE), as_of_end (TIMESTAMPTZ: the end of as_of in billing
--   time), refund_window_days (INTEGER), disqualifying_reasons (VARCHAR[]).

-- SPEC 3: "A timestamp's billing day is its date in that zone."
CREATE OR REPLACE TEMP MACRO billing_day(moment) AS CAST(timezone(getvariable('billing_tz'), moment) AS DATE);

-- SPEC 3: "billing_day(event) - billing_day(purchased_at) <= N - 1", in whole days.
CREATE OR REPLACE TEMP MACRO billing_days_between(earlier, later) AS
    date_diff('day', billing_day(earlier), billing_day(later));

-- SPEC 2: "two amounts are equal within 0.01"; so one exceeds another by more than 0.01.
CREATE OR REPLACE TEMP MACRO exceeds_by_more_than_a_cent(amount, limit_amount) AS amount > limit_amount + 0.01;

-- SPEC 4: a suspension counts when its reason is one of the configured disqualifying ones
-- (default content_violation, illegal_activity); arrears and the like do not.
CREATE OR REPLACE TEMP MACRO is_disqualifying_suspension(status, reason) AS
    status = 'suspended' AND list_contains(getvariable('disqualifying_reasons'), reason);
