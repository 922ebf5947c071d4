// Node 20 https client for test_tls.py (Node carries OpenSSL statically and exports SSL_read/SSL_write):
// COUNT keep-alive POSTs of "node-body-<i>" to https://127.0.0.1:PORT/node/<i> with X-Secret: SECRET, then it stays
// until its stdin closes, so the test can see it in the agent's /tls/targets.
const https = require('https');
const [port, secret, count] = [+process.argv[2], process.argv[3], +process.argv[4]];
const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
function send(i) {
  if (i === count) {
    agent.destroy();
    process.stdin.on('end', () => process.exit(0));
    process.stdin.resume();
    return;
  }
  const body = 'node-body-' + i;
  const req = https.request({ host: '127.0.0.1', port, path: '/node/' + i, method: 'POST', agent,
    rejectUnauthorized: false, headers: { 'X-Secret': secret, 'Content-Length': body.length } }, res => {
    let text = '';
    res.on('data', d => text += d);
    res.on('end', () => { console.log(text); send(i + 1); });
  });
  req.on('error', e => { console.error(e); process.exit(1); });
  req.end(body);
}
send(0);
