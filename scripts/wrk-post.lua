-- wrk sends the tutorial's postfile body with every request:
--   wrk -t2 -c100 -d10s -s scripts/wrk-post.lua http://127.0.0.1:5000/seckill
wrk.method = "POST"
wrk.body = "msg=#ABCD"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
