# The Flask seckill tutorial's server, as its post gives it (with its garbled
# lines put back), for scripts/bench-references.sh only: Flask's threaded
# development server, redis-py, the WATCH/MULTI/EXEC purchase. Two changes:
# the address, Redis and stock come from the command line, and /healthz
# answers without Redis, as seckill's does.
#   python tutorial.py HOST PORT REDIS_URL STOCK
import random
import sys
from json import loads

import redis
from flask import Flask, jsonify, request

host, port, redis_url, stock = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
app = Flask(__name__)

pyredis = redis.Redis.from_url(redis_url, decode_responses=True)
pyredis.set(name='commodity:num', value=stock)
pyredis.sadd('user:id', 'null')

pool = redis.ConnectionPool.from_url(redis_url)


@app.route('/seckill', methods=['POST', 'GET'])
def fun_send():
    if request.method == 'GET':
        return 'seckill.html'
    pyredis = redis.Redis(connection_pool=pool)
    rpipe = pyredis.pipeline(transaction=True)
    baseid = request.form.get('msg', type=str).strip()
    userid = baseid + str(random.randint(0, 100000))
    rpipe.watch('commodity:num')
    if int(rpipe.get('commodity:num')) < 1:
        print('The second kill is over')
        return jsonify(user_id=userid, response_num=-1)
    elif rpipe.sismember('user:id', userid):
        print(f'user%{userid}Commodity has been killed in seconds, no repetition!')
        return jsonify(user_id=userid, response_num=-2)
    else:
        rpipe.multi()
        rpipe.decr('commodity:num', amount=1)
        rpipe.sadd('user:id', userid)
        rpipe.execute()
        print(f'user{userid}Successful Secondary Kill!')
        print('Current Remaining Merchandise Number:%d' % (loads(pyredis.get('commodity:num'))))
        return jsonify(user_id=userid, response_num=1)


@app.route('/healthz')
def healthz():
    return jsonify(status='ok')


if __name__ == '__main__':
    app.run(host=host, port=port)
