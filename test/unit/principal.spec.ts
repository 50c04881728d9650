import { strict as assert } from 'node:assert';
import { runInNewContext } from 'node:vm';
import { mqttPrincipal, principalOf, senderOf, sparkplugPrincipal } from '../../lib/principal';

describe('principal: who asked for a write', () => {
  it('prefers msg.principal over msg.user and the message id', () => {
    const principal = mqttPrincipal('gw-line2', 'alice');
    assert.equal(principal.id, 'mqtt:gw-line2 (user alice)');
    assert.equal(senderOf({ principal, user: 'bob', _msgid: 'x' }), 'mqtt:gw-line2 (user alice)');
    assert.equal(senderOf({ principal: sparkplugPrincipal('SCADA1', 'edge-1'), _msgid: 'x' }), 'sparkplug-host:SCADA1');
    assert.equal(senderOf({ principal: sparkplugPrincipal(undefined, 'edge-1') }), 'sparkplug:edge-1 (no primary host)');
  });

  it('reads a principal built in another realm (a function node) field by field', () => {
    const foreign = runInNewContext('({ via: "opcua", id: "opcua:operator", user: "operator", extra: { x: 1 } })');
    assert.deepEqual(principalOf({ principal: foreign }), { via: 'opcua', id: 'opcua:operator', user: 'operator' });
  });

  it('ignores an unusable principal and falls back to msg.user, a dashboard user, the message id', () => {
    for (const principal of [null, 'alice', [], { via: 'mqtt' }, { id: '   ' }, { id: {} }]) {
      assert.equal(senderOf({ principal, _msgid: 'm1' }), 'msg m1');
    }
    assert.equal(principalOf({ principal: { id: 'x', via: 'root' } })?.via, 'flow');
    assert.equal(senderOf({ user: 'anna', _msgid: 'x' }), 'anna');
    assert.equal(senderOf({ user: { username: 'bob' } }), 'bob');
    assert.equal(senderOf({ _client: { user: { name: 'carl' } }, _msgid: 'x' }), 'carl');
    assert.equal(senderOf({ _msgid: 'a1b2' }), 'msg a1b2');
  });

  it('bounds the length of every field', () => {
    const long = 'x'.repeat(10_000);
    assert.equal(senderOf({ principal: { id: long } }).length, 256);
  });
});
