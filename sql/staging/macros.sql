/* @step
creates = ["billing_day", "billing_days_between", "exceeds_by_more_than_a_cent", "is_disqualifying_suspension", "in_days_ending_on_as_of", "currency_tie_out"]
params = ["as_of", "billing_tz", "disqualifying_reasons"]
*/
-- Shared helpers of the night's steps, made before any of them runs. Their parameters are
-- read when a macro is called: billing_tz (VARCHAR), as_of (DATE), disqualifying_reasons
-- (VARCHAR[]).

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

-- SPEC 3: "The N days ending on as_of are the billing days from as_of - (N - 1) to as_of."
CREATE OR REPLACE TEMP MACRO in_days_ending_on_as_of(day, days) AS
    day BETWEEN getvariable('as_of') - CAST(days - 1 AS INTEGER) AND getvariable('as_of');

-- An invariant's verdict from per-currency figures, `rows` being a list of
-- {currency, expected, actual} texts: passed when every currency's texts are equal.
CREATE OR REPLACE TEMP MACRO currency_tie_out(rows, subject) AS {
    'passed': coalesce(list_bool_and(list_transform(rows, lambda r: r.expected IS NOT DISTINCT FROM r.actual)), true),
    'expected': coalesce(nullif(array_to_string(list_transform(rows,
                    lambda r: r.currency || ': ' || coalesce(r.expected, 'none')), '; '), ''), 'none'),
    'actual': coalesce(nullif(array_to_string(list_transform(rows,
                  lambda r: r.currency || ': ' || coalesce(r.actual, 'none')), '; '), ''), 'none'),
    'detail': CASE WHEN list_bool_and(list_transform(rows, lambda r: r.expected IS NOT DISTINCT FROM r.actual))
                        IS NOT FALSE
                   THEN subject || ' tie out in ' || coalesce(len(rows), 0) || ' currencies'
                   ELSE 'differs in ' || array_to_string(list_transform(
                            list_filter(rows, lambda r: r.expected IS DISTINCT FROM r.actual),
                            lambda r: r.currency), ', ') END
};
