import { strict as assert } from 'node:assert';
import { DEFAULT_OPCUA_SIM_PORT, OPCUA_SIM_PORT_ENV, resolveOpcUaSimPort, simNodeId, browseNameOf } from '../../sim/opcua-server';

describe('sim OPC UA server options', () => {
  it('takes the port from the option, else the environment, else 4850; refuses a bad one naming its source', () => {
    assert.equal(resolveOpcUaSimPort(undefined, {}), DEFAULT_OPCUA_SIM_PORT);
    assert.equal(DEFAULT_OPCUA_SIM_PORT, 4850);
    assert.equal(resolveOpcUaSimPort(undefined, { [OPCUA_SIM_PORT_ENV]: '4900' }), 4900);
    assert.equal(resolveOpcUaSimPort(0, { [OPCUA_SIM_PORT_ENV]: '4900' }), 0);
    assert.throws(() => resolveOpcUaSimPort(undefined, { [OPCUA_SIM_PORT_ENV]: 'x' }), /UNS_EDGE_OPCUA_SIM_PORT must be an integer/);
    assert.throws(() => resolveOpcUaSimPort(70000, {}), /the port option must be an integer/);
  });

  it('names drive nodes by unit id and BrowseName in namespace 2', () => {
    assert.equal(browseNameOf('actualSpeed'), 'ActualSpeed');
    assert.equal(simNodeId(3, 'ActualSpeed'), 'ns=2;s=Drive3.ActualSpeed');
    assert.equal(simNodeId(1, 'Status', 'Running'), 'ns=2;s=Drive1.Status.Running');
    assert.equal(simNodeId(1), 'ns=2;s=Drive1');
  });
});
