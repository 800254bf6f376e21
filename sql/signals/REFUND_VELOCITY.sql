/* @signal
code = "REFUND_VELOCITY"
position = 8  # in the catalogue (SPEC table order)
origin = "extra"
weight = 0.3
summary = "a day with far more refunds than usual across all entities"
reads = ["refund_facts"]
params = ["as_of"]

[settings]  # [signals] keys of the config, with their defaults
refund_velocity_baseline_days = 28
refund_velocity_factor = 3.0
refund_velocity_min_refunds = 20
refund_velocity_window_days = 7
*/
-- Beyond the SPEC. Policy 6: "Refunds may be declined when abuse is suspected" - a leaked
-- coupon or a scripted campaign shows as a day with far more refunds than usual.
-- A billing day in the refund_velocity_window_days ending on as_of spikes when its live
-- refunds, across all entities, number at least refund_velocity_min_refunds and at least
-- refund_velocity_factor times the median of the refund_velocity_baseline_days before it
-- (days without refunds count as 0). Fires for every entity with a live refund that day.
WITH days AS (
    SELECT CAST(day AS DATE) AS day
    FROM range(getvariable('as_of') - CAST(getvariable('refund_velocity_window_days')
                                          + getvariable('refund_velocity_baseline_days') - 1 AS INTEGER),
               getvariable('as_of') + 1, INTERVAL 1 DAY) AS calendar(day)
),
daily AS (
    SELECT days.day, count(refund.refund_id) AS live_refunds
    FROM days LEFT JOIN refund_facts AS refund ON refund.request_day = days.day AND refund.is_live
    GROUP BY days.day
),
spikes AS (
    SELECT day, live_refunds,
           median(live_refunds) OVER (ORDER BY day ROWS BETWEEN getvariable('refund_velocity_baseline_days') PRECEDING
                                                        AND 1 PRECEDING) AS baseline_median
    FROM daily
    QUALIFY in_days_ending_on_as_of(day, getvariable('refund_velocity_window_days'))
        AND live_refunds >= getvariable('refund_velocity_min_refunds')
        AND live_refunds >= getvariable('refund_velocity_factor') * baseline_median
)
SELECT refund.entity_id,
       {'spike_days': list_sort(list(DISTINCT {'day': spikes.day, 'live_refunds': spikes.live_refunds,
                                               'baseline_median': spikes.baseline_median})),
        'min_refunds': getvariable('refund_velocity_min_refunds'),
        'factor': getvariable('refund_velocity_factor'),
        'baseline_days': getvariable('refund_velocity_baseline_days')} AS evidence,
       list(refund.refund_id ORDER BY refund.requested_at, refund.refund_id) AS refund_ids
FROM refund_facts AS refund
JOIN spikes ON spikes.day = refund.request_day
WHERE refund.is_live
GROUP BY refund.entity_id
