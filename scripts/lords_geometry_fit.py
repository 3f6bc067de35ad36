import re,sys
def load(path):
    log=open(path).read().split('=== ')
    meas={};cands={};seen=set()
    shape_of={}
    for blk in log[1:]:
        head=blk.split('\n')[0]
        parts=[x.strip() for x in head.split('|')]
        fmt,setting=(parts if len(parts)==2 else ('--bits 4 --block 64',parts[0]))
        m=re.search(r'WR=(\d+)(?: HILO_LORDS_SPLIT=(\d+))?',setting)
        wr=int(m.group(1)); ks=int(m.group(2)) if m.group(2) else 0
        order=[]
        cur=[]
        for line in blk.split('\n'):
            c=re.match(r'\s+candidate (\d+) rows/CTA x (\d+) slabs: (\d+) clusters resident, (\d+) waves, cost (\d+)',line)
            if c: cur.append(tuple(int(x) for x in c.groups())); continue
            ch=re.match(r'lords_gemv(?: \(wgmma\))?: rows (\d+) x cols (\d+) tiles, rank_pad (\d+): (\d+) rows/CTA \((\d+)x(\d+) warps\), (\d+) slabs',line)
            if ch:
                rt,ct,rp,rows,w,wc,k=map(int,ch.groups())
                order.append((rt,ct,rp,(w,k),cur)); cur=[]
            mm=re.match(r'\s+(\d+)x(\d+)\s+1\s+lords\s+(\d+)\s+([\d.]+)',line)
            if mm:
                shape=(int(mm.group(1))//16,int(mm.group(2))//128)
                meas.setdefault((fmt,shape),{})[(wr,ks)]=float(mm.group(4))
        if setting=='HILO_LORDS_WR=0' and fmt not in seen:
            seen.add(fmt)
            for rt,ct,rp,chosen,cs in order: cands[(fmt,(rt,ct))]=(chosen,cs,rp)
    return meas,cands
meas,cands=load(sys.argv[1])
for g in [0,0.5,1,2,3,4,6,8]:
    tot=0;tot_def=0;detail=[]
    for key,(chosen,cs,rp) in cands.items():
        if rp==64 or (key[1]==(896,32) and rp>=32 and 'block 128' not in key[0]): pass
        m=meas.get(key,{})
        best=None
        for rows,ks,res,waves,cost in cs:
            wr=rows//32
            ctas=ks*((key[1][0]+2*wr-1)//(2*wr))
            c=cost+g*ctas
            if best is None or c<best[0]*0.999: best=(c,wr,ks)
        t=m.get((best[1],best[2]))
        if (best[1],best[2])==chosen: t=m.get((0,0))
        td=m.get((0,0))
        detail.append(f"{key[0][7:]} {key[1]}: {best[1]}x{best[2]} {t} (default {chosen} {td})")
        tot+= t if t else 999; tot_def+=td
    print(f"gamma {g}: total {tot:.1f} vs default {tot_def:.1f}")
    for d in detail: print("   ",d)
print("=== slabs restricted to powers of two, gamma 0 / 0.5")
for g in [0, 0.5, 1]:
    tot=0;tot_def=0;detail=[]
    for key,(chosen,cs,rp) in cands.items():
        m=meas.get(key,{})
        best=None
        for rows,ks,res,waves,cost in cs:
            if ks & (ks-1): continue
            wr=rows//32
            ctas=ks*((key[1][0]+2*wr-1)//(2*wr))
            c=cost+g*ctas
            if best is None or c<best[0]*0.999: best=(c,wr,ks)
        t=m.get((best[1],best[2]))
        if (best[1],best[2])==chosen: t=m.get((0,0))
        td=m.get((0,0))
        detail.append(f"{key[0][7:]} {key[1]}: {best[1]}x{best[2]} {t} (default {chosen} {td})")
        tot+= t if t else 999; tot_def+=td
    print(f"gamma {g}: total {tot:.1f} vs default {tot_def:.1f}")
    for d in detail: print("   ",d)
print("=== slabs whose last one holds at least 3/4 of the others' tiles")
for frac in [0.5, 0.75]:
    tot=0;tot_def=0;detail=[]
    for key,(chosen,cs,rp) in cands.items():
        m=meas.get(key,{})
        best=None
        ct=key[1][1]
        for rows,ks,res,waves,cost in cs:
            tpc=-(-ct//ks); last=ct-(ks-1)*tpc
            if last < frac*tpc: continue
            wr=rows//32
            c=cost
            if best is None or c<best[0]*0.999: best=(c,wr,ks)
        t=m.get((best[1],best[2]))
        if (best[1],best[2])==chosen: t=m.get((0,0))
        td=m.get((0,0))
        detail.append(f"{key[0][7:]} {key[1]}: {best[1]}x{best[2]} {t} (default {chosen} {td})")
        tot+= t if t else 999; tot_def+=td
    print(f"frac {frac}: total {tot:.1f} vs default {tot_def:.1f}")
    for d in detail: print("   ",d)
