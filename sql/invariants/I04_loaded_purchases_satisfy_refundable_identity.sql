/* @invariant
code = "I04"
name = "loaded_purchases_satisfy_refundable_identity"
reads = ["purchases"]
*/
-- Every loaded purchase satisfies the row rule behind the refundable amount (SPEC 2):
-- list_price - discount_amount - coupon_amount = paid_cash_credit + paid_commission_credit
-- + paid_free_credit, within 0.01, so the refundable amount finance sees is well defined.
WITH broken AS (
    SELECT order_id,
           list_price - discount_amount - coupon_amount AS priced,
           paid_cash_credit + paid_commission_credit + paid_free_credit AS paid
    FROM purchases
    WHERE NOT coalesce(abs((list_price - discount_amount - coupon_amount)
                           - (paid_cash_credit + paid_commission_credit + paid_free_credit)) <= 0.01, false)
)
SELECT count(*) = 0 AS passed,
       'orders tying out: ' || (SELECT count(*) FROM purchases) AS expected,
       'orders tying out: ' || ((SELECT count(*) FROM purchases) - count(*)) AS actual,
       coalesce(string_agg(order_id || ': list - discount - coupon = ' || coalesce(CAST(priced AS VARCHAR), 'NULL')
                           || ', paid = ' || coalesce(CAST(paid AS VARCHAR), 'NULL'), '; ' ORDER BY order_id),
                'every loaded order''s price less discount and coupon equals what was paid') AS detail
FROM broken;
