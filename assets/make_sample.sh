#!/usr/bin/env bash
# The simulator's sample clip: 5 s, 960x540, H.264 main + AAC, faststart, about 330 KB.
# Needs Debian's ffmpeg and fonts-dejavu-core. Run once; the MP4 is committed.
set -euo pipefail
cd "$(dirname "$0")"
ffmpeg -hide_banner -loglevel error -y \
  -f lavfi -i "testsrc2=size=960x540:rate=24:duration=5" \
  -f lavfi -i "sine=frequency=440:sample_rate=44100:duration=5" \
  -vf "drawtext=fontfile=/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf:text='kling-ui demo (simulated)':fontsize=40:fontcolor=white:box=1:boxcolor=black@0.6:x=(w-text_w)/2:y=h-80" \
  -c:v libx264 -profile:v main -pix_fmt yuv420p -crf 32 -preset veryfast \
  -c:a aac -b:a 64k -movflags +faststart -shortest sample.mp4
