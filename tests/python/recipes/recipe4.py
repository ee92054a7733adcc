# Recipe 4 of shared/spec/recipes.txt, as written (indentation restored). The test substitutes
# the three example values (base_url, org_id, the input id) and stops it with SIGINT.
import os, time
from clutchcall.streams import Streams, BroadcastViewer
streams = Streams(
    base_url="https://app.clutchcall.dev",
    api_key=os.environ["CLUTCHCALL_CREDENTIALS"],
    org_id="org_abc",
)
inp = streams.live_inputs.get(id="li_xyz")
ticket = inp.signed_playback_url(ttl_seconds=3600)
out = open("broadcast.mp4", "wb")
def on_chunk(is_init, chunk):
    # first chunk is the CMAF init segment; the rest are media segments
    out.write(chunk.data)
def on_close(reason, detail):
    out.close()
    print("capture closed:", reason, detail)
viewer = BroadcastViewer.open(ticket.url, on_chunk=on_chunk, on_close=on_close)
# Run until the broadcast ends or you stop it.
try:
    while True:
        time.sleep(1)
except KeyboardInterrupt:
    viewer.close()
