; Inno Setup 6 script for the Windows installer. build_windows.ps1 -Installer runs:
;   ISCC.exe /DAppVersion=0.1.0 /DSourceDir=build\dist\triptych /DOutputDir=build\dist packaging\triptych.iss
; Installs per user by default (no admin rights needed: workshop laptops), into
; %LOCALAPPDATA%\Programs\Triptych; an administrator can choose "all users" instead.
; Models, settings and downloads live in the user's folders, not here. Uninstalling keeps
; them unless the user says otherwise when asked (a silent uninstall always keeps them);
; the Hugging Face download cache, which other programs share, is never touched.

#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif
#ifndef SourceDir
  #define SourceDir "..\build\dist\triptych"
#endif
#ifndef OutputDir
  #define OutputDir "..\build\dist"
#endif
#ifndef Suffix
  #define Suffix ""
#endif

[Setup]
AppId={{6F2C8B9A-3D4E-4C1B-9A7F-2E5D8C0B1A43}
AppName=Triptych
AppVersion={#AppVersion}
AppVerName=Triptych {#AppVersion}
AppPublisher=Triptych
AppComments=Base, instruct and reasoning language models side by side
DefaultDirName={autopf}\Triptych
DefaultGroupName=Triptych
DisableProgramGroupPage=yes
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir={#OutputDir}
OutputBaseFilename=Triptych-{#AppVersion}-windows-x64{#Suffix}-setup
UninstallDisplayIcon={app}\triptych.exe
UninstallDisplayName=Triptych {#AppVersion}
; GGUF model files hardly compress; lzma2 still shrinks the Qt/Python part.
Compression=lzma2
SolidCompression=no
WizardStyle=modern
ChangesEnvironment=yes

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"
Name: "addtopath"; Description: "Add triptych-cli to PATH (terminal commands)"; GroupDescription: "Terminal:"; Flags: unchecked

[Files]
Source: "{#SourceDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[InstallDelete]
; A previous version's bundled libraries must not linger next to the new ones.
Type: filesandordirs; Name: "{app}\_internal"

[Icons]
Name: "{autoprograms}\Triptych"; Filename: "{app}\triptych.exe"; Comment: "Compare base, instruct and reasoning LLMs"
Name: "{autodesktop}\Triptych"; Filename: "{app}\triptych.exe"; Tasks: desktopicon

[Registry]
Root: HKCU; Subkey: "Environment"; ValueType: expandsz; ValueName: "Path"; ValueData: "{olddata};{app}"; Tasks: addtopath; Check: NeedsAddPath(ExpandConstant('{app}')); Flags: preservestringtype

[Run]
Filename: "{app}\triptych.exe"; Description: "{cm:LaunchProgram,Triptych}"; Flags: nowait postinstall skipifsilent

[Code]
const
  UserDataDir = '{localappdata}\triptych';  { platformdirs' config and data folders }

function NeedsAddPath(Dir: string): Boolean;
var
  Current: string;
begin
  if not RegQueryStringValue(HKEY_CURRENT_USER, 'Environment', 'Path', Current) then
  begin
    Result := True;
    exit;
  end;
  Result := Pos(';' + Uppercase(Dir) + ';', ';' + Uppercase(Current) + ';') = 0;
end;

procedure RemoveFromPath(Dir: string);
var
  Current: string;
  P: Integer;
begin
  if not RegQueryStringValue(HKEY_CURRENT_USER, 'Environment', 'Path', Current) then
    exit;
  P := Pos(';' + Uppercase(Dir), Uppercase(Current));
  if P = 0 then
    exit;
  Delete(Current, P, Length(Dir) + 1);
  RegWriteExpandStringValue(HKEY_CURRENT_USER, 'Environment', 'Path', Current);
end;

procedure CurUninstallStepChanged(CurUninstallStep: TUninstallStep);
var
  Data: string;
begin
  if CurUninstallStep = usUninstall then
    RemoveFromPath(ExpandConstant('{app}'));
  if (CurUninstallStep = usPostUninstall) and not UninstallSilent then
  begin
    Data := ExpandConstant(UserDataDir);
    if DirExists(Data) and (MsgBox('Also delete your Triptych settings, practice results and ' +
        'the models Triptych assembled or imported (' + Data + ')?' + #13#10#13#10 +
        'Models downloaded from Hugging Face stay in its cache.',
        mbConfirmation, MB_YESNO or MB_DEFBUTTON2) = IDYES) then
      DelTree(Data, True, True, True);
  end;
end;
