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
           any_value(text) FILTER (WHERE side = 'loaded') AS loaded_text,
           any_value(text) FILTER (WHERE side = 'reconciled') AS reconciled_text,
           any_value(text) FILTER (WHERE side = 'loaded') IS NOT DISTINCT FROM
               any_value(text) FILTER (WHERE side = 'reconciled') AS ok
    FROM figures
    GROUP BY currency
)
SELECT coalesce(bool_and(ok), true) AS passed,
       coalesce(string_agg(currency || ': ' || coalesce(loaded_text, 'none'), '; ' ORDER BY currency),
                'no purchases') AS expected,
       coalesce(string_agg(currency || ': ' || coalesce(reconciled_text, 'none'), '; ' ORDER BY currency),
                'no purchases') AS actual,
       coalesce('differs in ' || string_agg(currency, ', ' ORDER BY currency) FILTER (WHERE NOT ok),
                'purchase totals tie out in ' || count(*) || ' currencies') AS detail
FROM compared;
