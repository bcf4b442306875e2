"""OPC UA simulator: `python -m edge.simulators.opcua --port 4840 --kind cnc_mill --fault none`.

Serves variables under ns=2 with string node ids `Machine1.<Group>.<Signal>`, e.g.
`ns=2;s=Machine1.Spindle.Speed`, refreshed every 100 ms from the machine model.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time

from asyncua import ua
from asyncua.server.server import Server

from edge.simulators.machines import Fault, MachineModel

NAMESPACE = "urn:imewe:simulator"
# signal -> OPC UA string node id (ns=2)
NODE_IDS = {
    "spindle_rpm": "Machine1.Spindle.Speed",
    "torque_nm": "Machine1.Spindle.Torque",
    "power_kw": "Machine1.Drive.Power",
    "temperature_c": "Machine1.Spindle.Temperature",
    "vibration_mm_s": "Machine1.Spindle.Vibration",
    "progress_pct": "Machine1.Job.Progress",
}


async def serve(
    *, port: int, model: MachineModel, period: float = 0.1, ready: asyncio.Event | None = None
) -> None:
    server = Server()
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/imewe/")
    server.set_server_name("Imewe machine simulator")
    idx = await server.register_namespace(NAMESPACE)
    machine = await server.nodes.objects.add_object(idx, "Machine1")
    variables = {}
    for signal, node_id in NODE_IDS.items():
        variables[signal] = await machine.add_variable(
            ua.NodeId(ua.String(node_id), ua.Int16(idx)),
            node_id.split(".", 1)[1],
            0.0,
            varianttype=ua.VariantType.Double,
        )
    started = time.monotonic()
    async with server:
        if ready is not None:
            ready.set()
        while True:
            values = model.sample(time.monotonic() - started)
            for signal, variable in variables.items():
                await variable.write_value(float(values.get(signal, 0.0)), ua.VariantType.Double)
            await asyncio.sleep(period)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=4840)
    parser.add_argument("--kind", choices=["cnc_mill", "fdm_printer"], default="cnc_mill")
    parser.add_argument("--rated-power-kw", type=float, default=7.5)
    parser.add_argument("--fault", choices=[f.value for f in Fault], default="none")
    parser.add_argument(
        "--mtconnect-port", type=int, default=0, help="also answer as an MTConnect agent"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    model = MachineModel(
        kind=args.kind, rated_power_kw=args.rated_power_kw, fault=Fault(args.fault)
    )
    if args.mtconnect_port:
        from edge.simulators.mtconnect import MtConnectSimulator

        # the same machine, seen through a second protocol
        MtConnectSimulator(model, port=args.mtconnect_port).start()
    asyncio.run(serve(port=args.port, model=model))


if __name__ == "__main__":
    main()
