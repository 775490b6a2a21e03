# Helper of scripts/cli-compare.sh: masks ids, hashes, durations and the root path of one world.
import sys,os,re,glob
root=sys.argv[1]
txt={}
for f in sorted(glob.glob(root+'/out/*')):
    txt[os.path.basename(f)]=open(f,errors='replace').read()
# collect every 16-hex id in order of appearance
ids=[]
for k in sorted(txt):
    for m in re.findall(r'\b[0-9a-f]{16}\b',txt[k]):
        if m not in ids: ids.append(m)
jr=[]
for k in sorted(txt):
    for m in re.findall(r'unfinished restore ([0-9a-f]{12})|journal ([0-9a-f]{12})',txt[k]):
        pass
out=root+'/masked'; os.makedirs(out,exist_ok=True)
for k,s in txt.items():
    s=s.replace(root,'ROOT')
    for n,i in enumerate(ids):
        s=s.replace(i,f'ID{n}').replace(i[:8],f'SID{n}')
    s=re.sub(r'\b[0-9a-f]{64}\b','H64',s)
    s=re.sub(r'\b[0-9a-f]{12}\b','J12',s)
    s=re.sub(r'-[0-9a-f]{12}\b','-J12',s)
    s=re.sub(r'"duration_ms": \d+','"duration_ms": N',s)
    s=re.sub(r'in \d+\.\ds','in N.Ns',s)
    s=re.sub(r'duration:   \d+\.\d+s','duration:   N.NNs',s)
    s=re.sub(r'sitesnap_last_duration_seconds\{(.*)\} [\d.]+',r'sitesnap_last_duration_seconds{\1} N',s)
    s=re.sub(r'sitesnap_last_run_timestamp_seconds \d+\.\d+','sitesnap_last_run_timestamp_seconds N',s)
    s=re.sub(r'"(started|finished|created)": "[^"]*"',r'"\1": "T"',s)
    open(out+'/'+k,'w').write(s)
