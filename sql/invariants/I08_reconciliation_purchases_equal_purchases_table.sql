/* @invariant
code = "I08"
name = "reconciliation_purchases_equal_purchases_table"
reads = ["daily_reconciliation", "purchases"]
*/
-- daily_reconciliation's purchase figures add up to the loaded purchases table: per currency,
-- the order count, list price, discounts, coupons and the amounts paid by cash, commission
-- and free credits summed over its days and products equal the same sums over purchases.
WITH loaded AS (
    SELECT currency,
           count(*) AS orders,
           sum(list_price) AS list_price,
           sum(discount_amount) AS discount,
           sum(coupon_amount) AS coupon,
           sum(paid_cash_credit) AS cash,
           sum(paid_commission_credit) AS commission,
           sum(paid_free_credit) AS free,
           sum(paid_cash_credit + paid_commission_credit + paid_free_credit) AS paid
    FROM purchases
    GROUP BY currency
),
reconciled AS (
    SELECT currency,
           sum(purchases_count) AS orders,
           sum(purchases_list_price) AS list_price,
           sum(purchases_discount_amount) AS discount,
           sum(purchases_coupon_amount) AS coupon,
           sum(purchases_paid_cash_credit) AS cash,
           sum(purchases_paid_commission_credit) AS commission,
           sum(purchases_paid_free_credit) AS free,
           sum(purchases_paid_amount) AS paid
    FROM daily_reconciliation
    GROUP BY currency
    HAVING sum(purchases_count) > 0 OR sum(purchases_list_price) <> 0 OR sum(purchases_paid_amount) <> 0
),
figures AS (
    SELECT currency,
           'orders ' || orders || ', list ' || list_price || ', discount ' || discount || ', coupon ' || coupon
               || ', cash ' || cash || ', commission ' || commission || ', free ' || free || ', paid ' || paid AS text,
           'loaded' AS side
    FROM loaded
    UNION ALL
    SELECT currency,
           'orders ' || orders || ', list ' || list_price || ', discount ' || discount || ', coupon ' || coupon
               || ', cash ' || cash || ', commission ' || commission || ', free ' || free || ', paid ' || paid,
           'reconciled'
    FROM reconciled
),
compared AS (
    SELECT currency,
           any_value(text) FILTER (WHERE side = 'loaded') AS expected,
           any_value(text) FILTER (WHERE side = 'reconciled') AS actual
    FROM figures
    GROUP BY currency
)
SELECT unnest(currency_tie_out(list({'currency': currency, 'expected': expected, 'actual': actual} ORDER BY currency),
                               'purchase totals'))
FROM compared;
