import sys
from PIL import Image
src, dst, width = sys.argv[1], sys.argv[2], int(sys.argv[3])
im = Image.open(src).convert("RGB")
if im.width > width:
    im = im.resize((width, round(im.height * width / im.width)), Image.LANCZOS)
im = im.quantize(colors=int(sys.argv[4]) if len(sys.argv)>4 else 64, method=Image.MEDIANCUT, dither=Image.NONE)
im.save(dst, optimize=True)
